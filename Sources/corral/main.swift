import CorralCLI

await Corral.main()
