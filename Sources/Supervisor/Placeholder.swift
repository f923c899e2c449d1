import Profiles
// Supervisor: processes, state dirs and the foreground runner.
