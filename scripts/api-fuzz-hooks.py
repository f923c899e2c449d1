"""schemathesis hooks for scripts/api-fuzz (loaded through SCHEMATHESIS_HOOKS).

API_FUZZ_VM, when set, is the name of the one VM the daemon runs: every `{name}` path parameter becomes it, so
the VM routes reach a real QEMU instead of answering 404. API_FUZZ_DISKS is a folder: a disk's `file` is moved
into it, so a fuzzed `POST …/disks` with a `size` creates its image there and nowhere else on the host.
"""
import os
import re

import schemathesis

TRUTHY = ("true", "1", "")


@schemathesis.hook
def before_call(context, case, kwargs):
    path = case.operation.path
    # The event stream (follow defaults to true) and a followed console stream until the client goes away, while
    # the fuzzer waits for whole responses: ask for what is there now. A `follow` the daemon refuses is sent as is.
    if path in ("/v1/events", "/v1/vms/{name}/console"):
        query = dict(case.query or {})
        follow = query.get("follow")
        if follow in TRUTHY or (follow is None and path == "/v1/events"):
            query["follow"] = "false"
        case.query = query

    vm = os.environ.get("API_FUZZ_VM")
    if vm and case.path_parameters and "name" in case.path_parameters:
        case.path_parameters = {**case.path_parameters, "name": vm}
        # A stop waits up to timeoutSeconds (0…86400) for a guest that may be paused and never power off, and the
        # VM's later operations queue behind it: keep a valid timeout short. An invalid one is sent as is.
        if path == "/v1/vms/{name}/stop" and isinstance(case.body, dict):
            seconds = case.body.get("timeoutSeconds")
            if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and 2 < seconds <= 86400:
                case.body = {**case.body, "timeoutSeconds": 2}

    disks = os.environ.get("API_FUZZ_DISKS")
    if disks and path == "/v1/vms/{name}/disks" and isinstance(case.body, dict):
        file = case.body.get("file")
        if isinstance(file, str) and file.startswith("/"):
            safe = re.sub(r"[^A-Za-z0-9._-]", "_", file)[:60]
            case.body = {**case.body, "file": os.path.join(disks, safe)}
