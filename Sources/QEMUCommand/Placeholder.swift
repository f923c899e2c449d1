import Profiles
// QEMUCommand: pure LiveConfig → argv.
