// corral-bench: benchmark harness for scripts/bench-*. Not part of the product.
//
//   corral-bench qmp --socket PATH [--count N] [--decoder-mb M]           QMPClient vs a raw socket (bench-qmp)
//   corral-bench qmp-up --argv-file FILE --socket PATH [--output F]      raw QEMU start + QMP handshake (bench-launch)
//   corral-bench hotplug --state-dir DIR --profile P [--rounds N]        VMManager vs hand-written QMP (bench-hotplug)
//   corral-bench overcommit-host --state-dir DIR --profile P …           in-process daemon (bench-overcommit)
//   corral-bench migrate …                                               VMManager migration vs raw QMP (bench-migrate)
//
// Every mode prints its results as markdown on stdout and progress on stderr.

#if canImport(Glibc)
import Glibc
#endif

func usage() -> Never {
    writeStderr("""
        usage: corral-bench qmp --socket PATH [--count N] [--decoder-mb M]
               corral-bench qmp-up --argv-file FILE --socket PATH [--output FILE] [--timeout S]
               corral-bench hotplug --state-dir DIR --profile PROFILE [--rounds N] [--cpu-vms M]
               corral-bench overcommit-host --state-dir DIR --profile PROFILE --count N --ready-file F --stop-file F
                                            [--host-root R] [--ksm] [--auto-balloon] [--policy-interval S]
               corral-bench migrate …   (see Sources/CorralBench/MigrateBench.swift and scripts/bench-migrate)
               corral-bench cluster --state-dir DIR --profile PROFILE --etcd URLS [--runs N] [--failovers M] [--evacuate N] [--evacuations R]

        """)
    exit(2)
}

let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case "qmp": await runQMPBench(Array(arguments.dropFirst()))
case "qmp-up": runQMPUp(Array(arguments.dropFirst()))
case "hotplug": await runHotplugBench(Array(arguments.dropFirst()))
case "overcommit-host": await runOvercommitHost(Array(arguments.dropFirst()))
case "migrate": await runMigrateBench(Array(arguments.dropFirst()))
case "cluster": await runClusterBench(Array(arguments.dropFirst()))
default: usage()
}
