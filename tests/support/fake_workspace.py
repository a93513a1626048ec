"""A fake Databricks workspace: a local HTTP server for the REST endpoints two real clients call, the papermill
engine (through the Databricks SDK) and the Databricks CLI (`databricks bundle validate/plan/deploy/run`).

It keeps state like a workspace does (a file tree, jobs, permissions, Unity Catalog volumes, registered models,
grants, quality monitors, experiments), so a second `bundle plan` after a deploy sees what the first created.
It records every request, and checks each one it can against the Databricks SDK's own types before answering:
each body field (or query or path parameter) must be a parameter of the SDK method that sends it, and its value
must survive a round trip through that parameter's type (`from_dict(v).as_dict() == v` for SDK dataclasses, the
enum for enums), so an unknown or misspelt field fails the test. Answers are built from SDK types too.
"""
import base64
import dataclasses
import inspect
import itertools
import json
import re
import threading
import typing
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

from databricks.sdk import WorkspaceClient
from databricks.sdk.service.catalog import (
    GrantsAPI,
    QualityMonitorsAPI,
    RegisteredModelsAPI,
    VolumesAPI,
)
from databricks.sdk.service.dashboards import Dashboard, LakeviewAPI, PublishedDashboard
from databricks.sdk.service.iam import CurrentUserAPI, PermissionsAPI, User
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
from databricks.sdk.service.ml import ExperimentsAPI
from databricks.sdk.service.sql import EndpointInfo, WarehousesAPI
from databricks.sdk.service.workspace import WorkspaceAPI

TOKEN = "dapi-test-not-a-secret"
USER = "someone@example.com"
RUN_ID, TASK_RUN_ID = 1001, 1002
WORKSPACE_ID = 1234567890123456  # what a workspace sends in X-Databricks-Org-Id
BI_WAREHOUSE = EndpointInfo(id="0123456789abcdef", name="dbxml-bi")  # what Terraform creates in each workspace


@dataclasses.dataclass(frozen=True)
class Route:
    "An endpoint: its method, its path (a regex whose named groups are path parameters) and the SDK method."
    method: str
    pattern: str
    sdk: typing.Callable | None  # None: a request no SDK method types (a file's raw bytes)
    handler: str  # the FakeWorkspace method that answers it
    newer: tuple[str, ...] = ()  # parameters the CLI's newer Go SDK sends that the Python SDK does not know yet
    body: str | None = None  # the parameter the whole JSON body is, when the SDK sends one object (a dashboard)


# the paths of databricks-sdk 0.162 and of the CLI v0.298 that sends them
ROUTES = [
    Route("GET", r"/api/2.0/preview/scim/v2/Me", CurrentUserAPI.me, "me"),
    Route("GET", r"/api/2.0/workspace/get-status", WorkspaceAPI.get_status, "get_status", ("return_export_info",)),
    Route("POST", r"/api/2.0/workspace/mkdirs", WorkspaceAPI.mkdirs, "mkdirs"),
    Route("POST", r"/api/2.0/workspace/import", WorkspaceAPI.import_, "import_notebook"),
    Route("POST", r"/api/2.0/workspace/delete", WorkspaceAPI.delete, "delete"),
    Route("GET", r"/api/2.0/workspace/list", WorkspaceAPI.list, "list_folder"),
    Route("GET", r"/api/2.0/workspace/export", WorkspaceAPI.export, "export", ("direct_download",)),
    Route("POST", r"/api/2.0/workspace-files/import-file/(?P<path>.+)", None, "import_file"),
    Route("GET", r"/api/2.0/workspace-files/(?P<path>.+)", None, "read_file"),
    Route("POST", r"/api/2.2/jobs/runs/submit", JobsAPI.submit, "submit"),
    Route("GET", r"/api/2.2/jobs/runs/get", JobsAPI.get_run, "get_run"),
    Route("GET", r"/api/2.2/jobs/runs/get-output", JobsAPI.get_run_output, "run_output"),
    Route("GET", r"/api/2.2/jobs/runs/export", JobsAPI.export_run, "export_run"),
    Route("POST", r"/api/2.2/jobs/create", JobsAPI.create, "create_job"),
    Route("GET", r"/api/2.2/jobs/get", JobsAPI.get, "get_job"),
    Route("POST", r"/api/2.2/jobs/reset", JobsAPI.reset, "reset_job"),
    Route("POST", r"/api/2.2/jobs/delete", JobsAPI.delete, "delete_job"),
    Route("POST", r"/api/2.2/jobs/run-now", JobsAPI.run_now, "run_now"),
    Route("PUT", r"/api/2.0/permissions/(?P<request_object_type>[a-z-]+)/(?P<request_object_id>[^/]+)",
          PermissionsAPI.set, "set_permissions"),
    Route("GET", r"/api/2.0/permissions/(?P<request_object_type>[a-z-]+)/(?P<request_object_id>[^/]+)",
          PermissionsAPI.get, "get_permissions"),
    Route("POST", r"/api/2.1/unity-catalog/volumes", VolumesAPI.create, "create_volume"),
    Route("GET", r"/api/2.1/unity-catalog/volumes/(?P<name>[^/]+)", VolumesAPI.read, "get_volume"),
    Route("POST", r"/api/2.1/unity-catalog/models", RegisteredModelsAPI.create, "create_model"),
    Route("GET", r"/api/2.1/unity-catalog/models/(?P<full_name>[^/]+)", RegisteredModelsAPI.get, "get_model"),
    Route("PATCH", r"/api/2.1/unity-catalog/permissions/(?P<securable_type>[a-z_]+)/(?P<full_name>[^/]+)",
          GrantsAPI.update, "update_grants"),
    Route("GET", r"/api/2.1/unity-catalog/permissions/(?P<securable_type>[a-z_]+)/(?P<full_name>[^/]+)",
          GrantsAPI.get, "get_grants"),
    Route("POST", r"/api/2.1/unity-catalog/tables/(?P<table_name>[^/]+)/monitor", QualityMonitorsAPI.create,
          "create_monitor"),
    Route("GET", r"/api/2.1/unity-catalog/tables/(?P<table_name>[^/]+)/monitor", QualityMonitorsAPI.get,
          "get_monitor"),
    Route("POST", r"/api/2.0/mlflow/experiments/create", ExperimentsAPI.create_experiment, "create_experiment"),
    Route("GET", r"/api/2.0/mlflow/experiments/get", ExperimentsAPI.get_experiment, "get_experiment"),
    Route("GET", r"/api/2.0/sql/warehouses", WarehousesAPI.list, "list_warehouses"),
    Route("POST", r"/api/2.0/lakeview/dashboards", LakeviewAPI.create, "create_dashboard", body="dashboard"),
    Route("GET", r"/api/2.0/lakeview/dashboards/(?P<dashboard_id>[^/]+)", LakeviewAPI.get, "get_dashboard"),
    Route("PATCH", r"/api/2.0/lakeview/dashboards/(?P<dashboard_id>[^/]+)", LakeviewAPI.update, "update_dashboard",
          body="dashboard"),
    Route("POST", r"/api/2.0/lakeview/dashboards/(?P<dashboard_id>[^/]+)/published", LakeviewAPI.publish,
          "publish_dashboard"),
    Route("GET", r"/api/2.0/lakeview/dashboards/(?P<dashboard_id>[^/]+)/published", LakeviewAPI.get_published,
          "get_published_dashboard"),
]


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
    elif hint is typing.Any:
        pass
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
    hints = typing.get_type_hints(method) if method else {}
    arguments = dict(parse_qsl(query))
    for name, value in arguments.items():
        kind = _unwrap_optional(hints.get(name))
        if kind is int:
            arguments[name] = int(value)
        elif kind is bool:
            arguments[name] = value == "true"
    return arguments


def api_error(status: int, code: str, message: str) -> tuple[int, dict]:
    return status, {"error_code": code, "message": message}


class FakeWorkspace:
    """A local fake workspace that accepts only `TOKEN`, signed in as `user` (a person's e-mail, or a service
    principal's application id), whose submitted run ends in `result_state`."""

    def __init__(self, result_state: RunResultState = RunResultState.SUCCESS, user: str = USER):
        self.result_state = result_state
        self.user = user
        self.requests: list[tuple[str, str, dict]] = []  # (method, path, body or query), in order
        self.problems: list[str] = []  # requests that failed the SDK checks
        self.unknown: list[str] = []  # requests to endpoints the fake does not serve
        self.files: dict[str, bytes | None] = {}  # workspace path -> content (None: a folder)
        self.jobs: dict[int, dict] = {}  # job id -> settings
        self.permissions: dict[str, list] = {}  # "type/id" -> access control list
        self.volumes: dict[str, dict] = {}
        self.models: dict[str, dict] = {}
        self.grants: dict[str, list] = {}  # "securable_type/full name" -> privilege assignments
        self.monitors: dict[str, dict] = {}
        self.experiments: dict[str, dict] = {}  # id -> {"name": ...}
        self.dashboards: dict[str, dict] = {}  # id -> the draft as the API returns it
        self.published: dict[str, dict] = {}  # id -> the publish request
        self.runs_now: list[dict] = []  # `jobs run-now` requests (`bundle run`)
        self.ids = itertools.count(1_000_000)
        self.lock = threading.Lock()
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

    def calls(self, method: str | None = None) -> list[str]:
        "`METHOD path` of every request, in order (only `method`'s if given)."
        return [f"{verb} {path}" for verb, path, _ in self.requests if method in (None, verb)]

    @property
    def run_page_url(self) -> str:
        return f"{self.url}/#job/0/run/{RUN_ID}"

    # --- the workspace file tree ---

    @staticmethod
    def _normal(path: str) -> str:
        "`/Workspace/Users/x` and `/Users/x` are one path."
        path = "/" + path.strip("/")
        return path.removeprefix("/Workspace") or "/"

    def _make_folders(self, path: str):
        parts = self._normal(path).strip("/").split("/")
        for end in range(1, len(parts) + 1):
            self.files.setdefault("/" + "/".join(parts[:end]), None)

    def me(self, arguments):
        return 200, User(user_name=self.user, id="1", display_name=self.user).as_dict()

    def get_status(self, arguments):
        path = self._normal(arguments["path"])
        if path not in self.files:
            return api_error(404, "RESOURCE_DOES_NOT_EXIST", f"Path ({arguments['path']}) doesn't exist.")
        kind = "DIRECTORY" if self.files[path] is None else "FILE"
        return 200, {"path": arguments["path"], "object_type": kind, "object_id": abs(hash(path)) % 10**9}

    def mkdirs(self, arguments):
        self._make_folders(arguments["path"])
        return 200, {}

    def import_notebook(self, arguments):
        self._make_folders(arguments["path"].rsplit("/", 1)[0])
        self.files[self._normal(arguments["path"])] = base64.b64decode(arguments.get("content", ""))
        return 200, {}

    def import_file(self, arguments, body: bytes):
        path = "/" + arguments["path"]
        exists = self._normal(path) in self.files
        if exists and not arguments.get("overwrite"):
            return api_error(409, "RESOURCE_ALREADY_EXISTS", f"{path} already exists")
        self._make_folders(path.rsplit("/", 1)[0])
        self.files[self._normal(path)] = body
        return 200, {}

    def read_file(self, arguments, body: bytes):
        path = self._normal("/" + arguments["path"])
        if self.files.get(path) is None:
            return api_error(404, "RESOURCE_DOES_NOT_EXIST", f"Path (/{arguments['path']}) doesn't exist.")
        return 200, self.files[path]

    def delete(self, arguments):
        path = self._normal(arguments["path"])
        if path not in self.files:
            return api_error(404, "RESOURCE_DOES_NOT_EXIST", f"Path ({arguments['path']}) doesn't exist.")
        for name in [name for name in self.files if name == path or name.startswith(path + "/")]:
            del self.files[name]
        return 200, {}

    def list_folder(self, arguments):
        path = self._normal(arguments["path"])
        if self.files.get(path, b"") is not None:
            return api_error(404, "RESOURCE_DOES_NOT_EXIST", f"Path ({arguments['path']}) doesn't exist.")
        children = [name for name in self.files if name.rsplit("/", 1)[0] == path and name != path]
        return 200, {"objects": [{"path": name, "object_type": "DIRECTORY" if self.files[name] is None else "FILE"}
                                 for name in sorted(children)]}

    def export(self, arguments):
        path = self._normal(arguments["path"])
        if self.files.get(path) is None:
            return api_error(404, "RESOURCE_DOES_NOT_EXIST", f"Path ({arguments['path']}) doesn't exist.")
        if arguments.get("direct_download"):
            return 200, self.files[path]
        return 200, {"content": base64.b64encode(self.files[path]).decode()}

    # --- one-time runs (the papermill engine) ---

    def submit(self, arguments):
        return 200, SubmitRunResponse(run_id=RUN_ID).as_dict()

    def get_run(self, arguments):
        return 200, self.run().as_dict()

    def run_output(self, arguments):
        if arguments["run_id"] != TASK_RUN_ID:
            return api_error(400, "INVALID_PARAMETER_VALUE",
                             "Retrieving the output of runs with multiple tasks is not supported.")
        return 200, self.run_output_of_task().as_dict()

    def export_run(self, arguments):
        if arguments["run_id"] != TASK_RUN_ID:
            return api_error(400, "INVALID_PARAMETER_VALUE",
                             "Retrieving the output of runs with multiple tasks is not supported.")
        view = ViewItem(content=f"<html><body>run {TASK_RUN_ID}</body></html>", name="nb", type=ViewType.NOTEBOOK)
        return 200, ExportRunOutput(views=[view]).as_dict()

    def run(self) -> Run:
        failed = self.result_state != RunResultState.SUCCESS
        state = RunState(life_cycle_state=RunLifeCycleState.TERMINATED, result_state=self.result_state,
                         state_message="Task notebook failed. See the run output." if failed else "")
        return Run(run_id=RUN_ID, run_page_url=self.run_page_url, state=state,
                   tasks=[RunTask(task_key="notebook", run_id=TASK_RUN_ID, state=state)])

    def run_output_of_task(self) -> RunOutput:
        if self.result_state == RunResultState.SUCCESS:
            return RunOutput(notebook_output=NotebookOutput(result="2013-05 done"))
        return RunOutput(error="ZeroDivisionError: division by zero",
                         error_trace="Traceback (most recent call last):\nZeroDivisionError: division by zero")

    # --- what a bundle deploy creates ---

    def create_job(self, arguments):
        job_id = next(self.ids)
        self.jobs[job_id] = arguments
        return 200, {"job_id": job_id}

    def get_job(self, arguments):
        if arguments["job_id"] not in self.jobs:
            return api_error(400, "INVALID_PARAMETER_VALUE", f"Job {arguments['job_id']} does not exist.")
        return 200, {"job_id": arguments["job_id"], "creator_user_name": self.user,
                     "run_as_user_name": self.user, "settings": self.jobs[arguments["job_id"]]}

    def reset_job(self, arguments):
        self.jobs[arguments["job_id"]] = arguments["new_settings"]
        return 200, {}

    def delete_job(self, arguments):
        self.jobs.pop(arguments["job_id"], None)
        return 200, {}

    def run_now(self, arguments):
        if arguments["job_id"] not in self.jobs:
            return api_error(400, "INVALID_PARAMETER_VALUE", f"Job {arguments['job_id']} does not exist.")
        self.runs_now.append(arguments)
        return 200, {"run_id": RUN_ID}

    def set_permissions(self, arguments):
        key = f"{arguments['request_object_type']}/{arguments['request_object_id']}"
        self.permissions[key] = arguments.get("access_control_list", [])
        return self.get_permissions(arguments)

    def get_permissions(self, arguments):
        key = f"{arguments['request_object_type']}/{arguments['request_object_id']}"
        return 200, {"object_id": key, "access_control_list": [
            {**{name: value for name, value in entry.items() if name != "permission_level"},
             "all_permissions": [{"permission_level": entry["permission_level"], "inherited": False}]}
            for entry in self.permissions.get(key, [])]}

    def _create_securable(self, store: dict, noun: str, arguments):
        "Create a Unity Catalog object named catalog.schema.name in `store`, owned by the signed-in identity."
        full_name = f"{arguments['catalog_name']}.{arguments['schema_name']}.{arguments['name']}"
        if full_name in store:
            return api_error(409, "RESOURCE_ALREADY_EXISTS", f"{noun} {full_name} already exists")
        store[full_name] = arguments | {"full_name": full_name, "owner": self.user}
        return 200, store[full_name]

    @staticmethod
    def _read_securable(store: dict, noun: str, full_name: str):
        if full_name not in store:
            return api_error(404, "RESOURCE_DOES_NOT_EXIST", f"{noun} '{full_name}' does not exist.")
        return 200, store[full_name]

    def create_volume(self, arguments):
        return self._create_securable(self.volumes, "Volume", arguments)

    def get_volume(self, arguments):
        return self._read_securable(self.volumes, "Volume", arguments["name"])

    def create_model(self, arguments):
        return self._create_securable(self.models, "Model", arguments)

    def get_model(self, arguments):
        return self._read_securable(self.models, "Model", arguments["full_name"])

    def update_grants(self, arguments):
        key = f"{arguments['securable_type']}/{arguments['full_name']}"
        granted = {entry["principal"]: set(entry.get("privileges", [])) for entry in self.grants.get(key, [])}
        for change in arguments.get("changes", []):
            now = granted.setdefault(change["principal"], set())
            now |= set(change.get("add", []))
            now -= set(change.get("remove", []))
        self.grants[key] = [{"principal": principal, "privileges": sorted(privileges)}
                            for principal, privileges in granted.items() if privileges]
        return 200, {"privilege_assignments": self.grants[key]}

    def get_grants(self, arguments):
        return 200, {"privilege_assignments": self.grants.get(f"{arguments['securable_type']}/{arguments['full_name']}",
                                                              [])}

    def create_monitor(self, arguments):
        self.monitors[arguments["table_name"]] = arguments | {"status": "MONITOR_STATUS_ACTIVE"}
        return 200, self.monitors[arguments["table_name"]]

    def get_monitor(self, arguments):
        if arguments["table_name"] not in self.monitors:
            return api_error(404, "RESOURCE_DOES_NOT_EXIST", f"No monitor on {arguments['table_name']}.")
        return 200, self.monitors[arguments["table_name"]]

    def create_experiment(self, arguments):
        experiment_id = str(next(self.ids))
        self.experiments[experiment_id] = arguments | {"experiment_id": experiment_id, "lifecycle_stage": "active"}
        return 200, {"experiment_id": experiment_id}

    def get_experiment(self, arguments):
        if arguments["experiment_id"] not in self.experiments:
            return api_error(404, "RESOURCE_DOES_NOT_EXIST", f"No experiment {arguments['experiment_id']}.")
        return 200, {"experiment": self.experiments[arguments["experiment_id"]]}

    def list_warehouses(self, arguments):
        return 200, {"warehouses": [BI_WAREHOUSE.as_dict()]}

    def _dashboard(self, dashboard_id: str, arguments) -> dict:
        "The draft as the API returns it: the request's dashboard with its id, path and an etag."
        sent = arguments["dashboard"]
        draft = Dashboard.from_dict(sent | {
            "dashboard_id": dashboard_id, "etag": str(next(self.ids)), "lifecycle_state": "ACTIVE",
            "path": f"{sent.get('parent_path', '')}/{sent.get('display_name', '')}.lvdash.json"})
        self.dashboards[dashboard_id] = draft.as_dict() | {key: arguments[key] for key in
                                                            ("dataset_catalog", "dataset_schema") if key in arguments}
        return self.dashboards[dashboard_id]

    def create_dashboard(self, arguments):
        return 200, self._dashboard(f"{next(self.ids):032x}", arguments)

    def get_dashboard(self, arguments):
        if arguments["dashboard_id"] not in self.dashboards:
            return api_error(404, "RESOURCE_DOES_NOT_EXIST", f"No dashboard {arguments['dashboard_id']}.")
        return 200, self.dashboards[arguments["dashboard_id"]]

    def update_dashboard(self, arguments):
        if arguments["dashboard_id"] not in self.dashboards:
            return api_error(404, "RESOURCE_DOES_NOT_EXIST", f"No dashboard {arguments['dashboard_id']}.")
        return 200, self._dashboard(arguments["dashboard_id"], arguments)

    def publish_dashboard(self, arguments):
        if arguments["dashboard_id"] not in self.dashboards:
            return api_error(404, "RESOURCE_DOES_NOT_EXIST", f"No dashboard {arguments['dashboard_id']}.")
        self.published[arguments["dashboard_id"]] = arguments
        draft = self.dashboards[arguments["dashboard_id"]]
        return 200, PublishedDashboard(display_name=draft.get("display_name"), warehouse_id=arguments.get(
            "warehouse_id"), embed_credentials=arguments.get("embed_credentials")).as_dict()

    def get_published_dashboard(self, arguments):
        if arguments["dashboard_id"] not in self.published:
            return api_error(404, "RESOURCE_DOES_NOT_EXIST", f"Dashboard {arguments['dashboard_id']} is not published.")
        return self.publish_dashboard(arguments)

    # --- HTTP ---

    def handle(self, method: str, raw_path: str, body: bytes) -> tuple[int, dict | bytes]:
        "Check and answer one request."
        url = urlsplit(raw_path)
        for route in ROUTES:
            found = re.fullmatch(route.pattern, url.path)
            if route.method == method and found:
                break
        else:  # e.g. the clients' optional /.well-known/databricks-config probe
            self.unknown.append(f"{method} {url.path}")
            return api_error(404, "NOT_FOUND", f"no {url.path} here")
        path_arguments = {name: unquote(value) for name, value in found.groupdict().items()}
        if route.sdk is None:
            arguments = _query_arguments(None, url.query) | path_arguments
        elif method in ("POST", "PUT", "PATCH"):
            decoded = json.loads(body or b"{}")
            arguments = ({route.body: decoded} if route.body else decoded) | _query_arguments(route.sdk, url.query) \
                | path_arguments
        else:
            arguments = _query_arguments(route.sdk, url.query) | path_arguments
        with self.lock:
            self.requests.append((method, url.path, arguments))
            if route.sdk is not None:
                try:
                    check_request(route.sdk, {name: value for name, value in arguments.items()
                                              if name not in route.newer})
                except (AssertionError, ValueError, TypeError, KeyError) as problem:
                    self.problems.append(f"{method} {url.path}: {problem}")
                    return api_error(400, "INVALID_PARAMETER_VALUE", str(problem))
            answer = getattr(self, route.handler)
            return answer(arguments, body) if route.sdk is None else answer(arguments)

    def _handler(self):
        workspace = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.answer("GET")

            def do_POST(self):
                self.answer("POST")

            def do_PUT(self):
                self.answer("PUT")

            def do_PATCH(self):
                self.answer("PATCH")

            def do_DELETE(self):
                self.answer("DELETE")

            def answer(self, method):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                if urlsplit(self.path).path != "/.well-known/databricks-config" and \
                        self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self.reply(401, {"error_code": "UNAUTHENTICATED", "message": "Invalid access token."})
                self.reply(*workspace.handle(method, self.path, body))

            def reply(self, status, body):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream" if isinstance(body, bytes)
                                 else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-Databricks-Org-Id", str(WORKSPACE_ID))
                self.end_headers()
                self.wfile.write(data)

        return Handler
