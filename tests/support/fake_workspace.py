"""A fake Databricks workspace: a local HTTP server for the REST endpoints the papermill engine calls.

Every request is checked against the Databricks SDK's own types before it is answered: each
body field (or query parameter) must be a parameter of the SDK method that sends it, and its
value must survive a round trip through that parameter's type (`from_dict(v).as_dict() == v`
for SDK dataclasses, the enum for enums), so an unknown or misspelt field fails the test.
Answers are built from SDK types too (`Run(...).as_dict()`).
"""
import dataclasses
import inspect
import json
import threading
import typing
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from databricks.sdk import WorkspaceClient
from databricks.sdk.service.iam import CurrentUserAPI, User
from databricks.sdk.service.jobs import (
    ExportRunOutput,
    JobsAPI,
    NotebookOutput,
    Run,
    RunLifeCycleState,
    RunOutput,
    RunResultState,
    RunState,
    RunTask,
    SubmitRunResponse,
    ViewItem,
    ViewType,
)
from databricks.sdk.service.workspace import WorkspaceAPI

TOKEN = "dapi-test-not-a-secret"
USER = "someone@example.com"
RUN_ID, TASK_RUN_ID = 1001, 1002

# (HTTP method, path) -> the SDK method that sends the request (the paths of databricks-sdk 0.162)
ROUTES = {
    ("GET", "/api/2.0/preview/scim/v2/Me"): CurrentUserAPI.me,
    ("POST", "/api/2.0/workspace/mkdirs"): WorkspaceAPI.mkdirs,
    ("POST", "/api/2.0/workspace/import"): WorkspaceAPI.import_,
    ("POST", "/api/2.2/jobs/runs/submit"): JobsAPI.submit,
    ("GET", "/api/2.2/jobs/runs/get"): JobsAPI.get_run,
    ("GET", "/api/2.2/jobs/runs/get-output"): JobsAPI.get_run_output,
    ("GET", "/api/2.2/jobs/runs/export"): JobsAPI.export_run,
}


def _unwrap_optional(hint):
    "`X` for `Optional[X]`, else the hint unchanged."
    arguments = [argument for argument in typing.get_args(hint) if argument is not type(None)]
    return arguments[0] if typing.get_origin(hint) is typing.Union and len(arguments) == 1 else hint


def check_value(hint, value, where: str):
    "Assert that `value` (decoded JSON) is what the SDK sends for a parameter typed `hint`."
    hint = _unwrap_optional(hint)
    origin = typing.get_origin(hint)
    if origin is list:
        assert isinstance(value, list), f"{where}: expected a list, got {value!r}"
        for item in value:
            check_value(typing.get_args(hint)[0], item, where)
    elif origin is dict:
        assert isinstance(value, dict), f"{where}: expected an object, got {value!r}"
        for item in value.values():
            check_value(typing.get_args(hint)[1], item, where)
    elif dataclasses.is_dataclass(hint):
        assert hint.from_dict(value).as_dict() == value, f"{where}: not a valid {hint.__name__}: {value!r}"
    elif isinstance(hint, type) and issubclass(hint, Enum):
        hint(value)
    else:
        assert isinstance(value, hint), f"{where}: expected {hint.__name__}, got {value!r}"


def check_request(method, arguments: dict):
    "Assert that `arguments` are a valid call of the SDK `method`: known names, required ones present, right types."
    hints = typing.get_type_hints(method)
    parameters = inspect.signature(method).parameters
    unknown = set(arguments) - set(parameters) - {"self"}
    assert not unknown, f"{method.__qualname__} has no parameters {sorted(unknown)}"
    required = {name for name, parameter in parameters.items()
                if name != "self" and parameter.default is inspect.Parameter.empty}
    assert required <= set(arguments), f"{method.__qualname__} misses {sorted(required - set(arguments))}"
    for name, value in arguments.items():
        check_value(hints[name], value, f"{method.__qualname__}({name}=...)")


def _query_arguments(method, query: str) -> dict:
    "Query parameters converted to the types the SDK method declares (they arrive as strings)."
    hints = typing.get_type_hints(method)
    arguments = dict(parse_qsl(query))
    for name, value in arguments.items():
        if _unwrap_optional(hints.get(name)) is int:
            arguments[name] = int(value)
    return arguments


class FakeWorkspace:
    "A local fake workspace that accepts only `TOKEN` and whose one run ends in `result_state`."

    def __init__(self, result_state: RunResultState = RunResultState.SUCCESS):
        self.result_state = result_state
        self.requests: list[tuple[str, str, dict]] = []  # (method, path, body or query), in order
        self.problems: list[str] = []  # requests that failed the SDK checks
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def client(self, token: str = TOKEN) -> WorkspaceClient:
        return WorkspaceClient(host=self.url, token=token)

    def bodies(self, path: str) -> list[dict]:
        "The bodies (or queries) of the requests made to `path`."
        return [body for _, request_path, body in self.requests if request_path == path]

    @property
    def run_page_url(self) -> str:
        return f"{self.url}/#job/0/run/{RUN_ID}"

    def answer(self, method: str, path: str, arguments: dict) -> tuple[int, dict]:
        "The status and JSON answer for a request that passed the checks."
        if path.endswith("/scim/v2/Me"):
            return 200, User(user_name=USER, id="1").as_dict()
        if path.endswith("/runs/submit"):
            return 200, SubmitRunResponse(run_id=RUN_ID).as_dict()
        if path.endswith("/runs/get"):
            return 200, self.run().as_dict()
        if path.endswith(("/runs/get-output", "/runs/export")) and arguments["run_id"] != TASK_RUN_ID:
            return 400, {"error_code": "INVALID_PARAMETER_VALUE",
                         "message": "Retrieving the output of runs with multiple tasks is not supported."}
        if path.endswith("/runs/get-output"):
            return 200, self.run_output().as_dict()
        if path.endswith("/runs/export"):
            view = ViewItem(content=f"<html><body>run {TASK_RUN_ID}</body></html>", name="nb", type=ViewType.NOTEBOOK)
            return 200, ExportRunOutput(views=[view]).as_dict()
        return 200, {}  # mkdirs, import

    def run(self) -> Run:
        failed = self.result_state != RunResultState.SUCCESS
        state = RunState(life_cycle_state=RunLifeCycleState.TERMINATED, result_state=self.result_state,
                         state_message="Task notebook failed. See the run output." if failed else "")
        return Run(run_id=RUN_ID, run_page_url=self.run_page_url, state=state,
                   tasks=[RunTask(task_key="notebook", run_id=TASK_RUN_ID, state=state)])

    def run_output(self) -> RunOutput:
        if self.result_state == RunResultState.SUCCESS:
            return RunOutput(notebook_output=NotebookOutput(result="2013-05 done"))
        return RunOutput(error="ZeroDivisionError: division by zero",
                         error_trace="Traceback (most recent call last):\nZeroDivisionError: division by zero")

    def _handler(self):
        workspace = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.handle_request("GET")

            def do_POST(self):
                self.handle_request("POST")

            def handle_request(self, method):
                url = urlsplit(self.path)
                sdk_method = ROUTES.get((method, url.path))
                if sdk_method is None:  # e.g. the SDK's optional /.well-known/databricks-config probe
                    return self.reply(404, {"error_code": "NOT_FOUND", "message": f"no {url.path} here"})
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self.reply(401, {"error_code": "UNAUTHENTICATED", "message": "Invalid access token."})
                if method == "POST":
                    arguments = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                else:
                    arguments = _query_arguments(sdk_method, url.query)
                workspace.requests.append((method, url.path, arguments))
                try:
                    check_request(sdk_method, arguments)
                except (AssertionError, ValueError, TypeError) as problem:
                    workspace.problems.append(f"{method} {url.path}: {problem}")
                    return self.reply(400, {"error_code": "INVALID_PARAMETER_VALUE", "message": str(problem)})
                self.reply(*workspace.answer(method, url.path, arguments))

            def reply(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
