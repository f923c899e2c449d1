"""schemathesis hooks for scripts/api-fuzz (loaded through SCHEMATHESIS_HOOKS)."""
import schemathesis


@schemathesis.hook
def before_call(context, case, kwargs):
    # GET /v1/events streams live events until the client goes away (`follow` defaults to true), while the fuzzer
    # waits for whole responses: ask for the past events only. A `follow` the daemon refuses is sent as generated.
    if case.operation.method.upper() == "GET" and case.operation.path == "/v1/events":
        query = dict(case.query or {})
        if query.get("follow") in (None, "true", "1", ""):
            query["follow"] = "false"
        case.query = query
