"""One environment switch: every variable the platform reads, in one object (``Settings.from_env()``).

The same code runs on a laptop (embedded defaults: local files, DuckDB, SQLite) and in production
(PostgreSQL, S3-compatible storage, an MLflow server) by changing only configuration. The values come from the
Hydra configuration in ``conf/`` (an environment, TIME2BET_ENV: dev, staging or prod, picks them), and the
variables of the README's configuration table override them; a test checks that no module outside this one reads
the environment (except ``ui/``, a pure HTTP client that never imports the platform).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from time2bet.football import DIVISIONS, season_code
from time2bet.serving_contract import FAMILIES, MODEL_NAME

LIVE_SOURCE_URL = "https://www.football-data.co.uk"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_JOBS_PREFIX = "time2bet:jobs:"
DEFAULT_JOBS_MAX_PENDING = 1000                  # batch jobs waiting at most; beyond, POST /jobs answers 429
DEFAULT_JOBS_MAX_PENDING_BYTES = 256 * 1024 * 1024   # request bytes of unfinished jobs held in Redis at most
DEFAULT_JOBS_RESULT_TTL_S = 24 * 3600            # a finished job's record and result are kept this long
DEFAULT_SERVICE_URL = "http://127.0.0.1:3000"
DEFAULT_MAX_IN_FLIGHT = 64                       # requests in flight per service worker; beyond, 503 (0: no limit)
DEFAULT_MAX_RUNNING = 0                          # admitted requests running at once per worker (0: no cap; shedding.py)
DEFAULT_LEDGER_FLUSH_MS = 200                    # the ledger writes and fsyncs buffered predictions this often
DEFAULT_LEDGER_MAX_BUFFERED = 10_000             # ledger records a worker buffers at most; beyond, dropped and counted
DEFAULT_LIVE_LOGLOSS_MARGIN = 0.02               # live log-loss this much above the promotion-time estimate: a warning
DEFAULT_RETRAIN_EVERY_DAYS = 7.0                 # automatic retraining when the last training is older (0: never)
DEFAULT_RETRAIN_FEATURE_DRIFT_SHARE = 0.5        # automatic retraining from this share of drifted features
DEFAULT_RETRAIN_MIN_MATCHES = 100                # live quality triggers a retraining only judged on this many matches
DEFAULT_CELERY_BROKER_URL = "pyamqp://guest:guest@127.0.0.1:5672//"
DEFAULT_CELERY_QUEUE = "dagster"                 # dagster-celery's own default queue
EXECUTORS = ("default", "celery")                # TIME2BET_DAGSTER_EXECUTOR: Dagster's multiprocess one, or dagster-celery


def monitoring_dir(home: Path | str) -> Path:
    """The monitoring folder of a platform home: the assets write there, the service reads its scoreboard there."""
    return Path(home) / "monitoring"


def _default_home() -> Path:
    """A checkout keeps its data beside the code (git-ignored); an installed package uses ~/.time2bet."""
    repo = Path(__file__).resolve().parents[1]
    if (repo / "pyproject.toml").exists() and (repo / "time2bet_assets").exists():
        return repo / ".time2bet"
    return Path.home() / ".time2bet"


# --- the composed configuration (conf/, Hydra) ------------------------------------------------------------

ENVIRONMENTS = ("dev", "staging", "prod")
# conf/ beside the packages: found in a checkout and in its editable install (`pip install -e .`), which is how
# every image installs the project (deploy/docker)
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
# The variable that overrides each configuration key (the README's configuration table).
VARIABLES = {
    "TIME2BET_HOME": "home",
    "TIME2BET_SOURCE_URL": "ingestion.source_url",
    "TIME2BET_DIVISIONS": "ingestion.divisions",
    "TIME2BET_FIRST_SEASON": "ingestion.first_season",
    "TIME2BET_CRAWL_TIMEOUT_S": "ingestion.crawl_timeout_s",
    "TIME2BET_CRAWL_RETRIES": "ingestion.crawl_retries",
    "TIME2BET_POLITE": "ingestion.polite",
    "TIME2BET_WAREHOUSE_URL": "warehouse.url",
    "TIME2BET_RAW_ZONE": "raw_zone.path",
    "AWS_ENDPOINT_URL": "raw_zone.endpoint_url",
    "MLFLOW_TRACKING_URI": "mlflow.tracking_uri",
    "TIME2BET_MLFLOW_ARTIFACTS": "mlflow.artifacts",
    "TIME2BET_MODEL_NAME": "mlflow.model_name",
    "TIME2BET_MODEL_FAMILY": "model.family",
    "DAGSTER_HOME": "dagster.home",
    "TIME2BET_MODEL_POLL_S": "serving.model_poll_s",
    "TIME2BET_SNAPSHOT_POLL_S": "serving.snapshot_poll_s",
    "TIME2BET_SERVING_SNAPSHOT_DIR": "serving.snapshot_dir",
    "TIME2BET_CHALLENGER_SHARE": "serving.challenger_share",
    "TIME2BET_MAX_IN_FLIGHT": "serving.max_in_flight",
    "TIME2BET_MAX_RUNNING": "serving.max_running",
    "TIME2BET_REDIS_URL": "serving.redis_url",
    "TIME2BET_JOBS_PREFIX": "serving.jobs.prefix",
    "TIME2BET_JOBS_MAX_PENDING": "serving.jobs.max_pending",
    "TIME2BET_JOBS_MAX_PENDING_BYTES": "serving.jobs.max_pending_bytes",
    "TIME2BET_JOBS_RESULT_TTL_S": "serving.jobs.result_ttl_s",
    "TIME2BET_ACCESS_LOG": "serving.access_log",
    "TIME2BET_TRACING": "serving.tracing",
    "TIME2BET_SERVICE_URL": "serving.service_url",
    "TIME2BET_SERVICE_WORKERS": "serving.workers",
    "TIME2BET_FEATURES": "serving.features",
    "TIME2BET_ROUTES": "serving.routes",
    "TIME2BET_FEAST_DIR": "feast.dir",
    "TIME2BET_FEAST_PROJECT": "feast.project",
    "TIME2BET_FEAST_ONLINE_STORE": "feast.online_store",
    "TIME2BET_DAGSTER_EXECUTOR": "dagster.executor",
    "TIME2BET_CELERY_QUEUE": "dagster.celery_queue",
    "TIME2BET_LEDGER": "ledger.enabled",
    "TIME2BET_LEDGER_DIR": "ledger.dir",
    "TIME2BET_LEDGER_FLUSH_MS": "ledger.flush_ms",
    "TIME2BET_LEDGER_MAX_BUFFERED": "ledger.max_buffered",
    "TIME2BET_PUSHGATEWAY_URL": "monitoring.pushgateway_url",
    "TIME2BET_LIVE_LOGLOSS_MARGIN": "monitoring.live_logloss_margin",
    "TIME2BET_RETRAIN_EVERY_DAYS": "retraining.every_days",
    "TIME2BET_RETRAIN_FEATURE_DRIFT_SHARE": "retraining.feature_drift_share",
    "TIME2BET_RETRAIN_ON_PREDICTION_DRIFT": "retraining.on_prediction_drift",
    "TIME2BET_RETRAIN_ON_TARGET_DRIFT": "retraining.on_target_drift",
    "TIME2BET_RETRAIN_MIN_MATCHES": "retraining.min_matches",
}
_SECRET_KEY = re.compile(r"password|secret|token|credential", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^/:@\s]*):(?P<password>[^/\s]+)@", re.IGNORECASE)
_COMPOSE_LOCK = threading.Lock()   # Hydra's compose API keeps global state (GlobalHydra)


@functools.lru_cache(maxsize=16)
def _composed(environment: str, overrides: tuple[str, ...]):
    from hydra import compose, initialize_config_dir

    if environment not in ENVIRONMENTS:
        raise ValueError(f"TIME2BET_ENV must be one of {ENVIRONMENTS}, got {environment!r}")
    if not (CONF_DIR / "config.yaml").exists():
        raise FileNotFoundError(f"no configuration at {CONF_DIR}: install the project editable (pip install -e .) "
                                "from a checkout, which keeps conf/ beside the packages")
    with _COMPOSE_LOCK, initialize_config_dir(config_dir=str(CONF_DIR), job_name="time2bet"):
        return compose("config", overrides=[f"env={environment}", *overrides])


def load_config(env: Mapping[str, str] | None = None, *, environment: str | None = None,
                overrides: Sequence[str] = ()):
    """The composed configuration of ``environment`` (else TIME2BET_ENV, else dev) with Hydra ``overrides``
    (``key=value``), resolved (:func:`resolve_config`): an OmegaConf DictConfig."""
    env = os.environ if env is None else env
    return resolve_config(_composed(environment or env.get("TIME2BET_ENV") or "dev", tuple(overrides)), env)


def resolve_config(cfg, env: Mapping[str, str] | None = None):
    """A copy of a composed configuration (load_config's, or the one ``@hydra.main`` hands its task) without Hydra's
    own node, its home decided (TIME2BET_HOME, else the file's, else the checkout's or ~/.time2bet) and every
    interpolation resolved. Secrets in it come from the process environment."""
    from omegaconf import OmegaConf, open_dict
    from omegaconf.errors import InterpolationResolutionError

    env = os.environ if env is None else env
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.pop("hydra", None)
    cfg.home = str(Path(env.get("TIME2BET_HOME") or cfg.home or _default_home()).expanduser().resolve())
    try:
        OmegaConf.resolve(cfg)
    except InterpolationResolutionError as exc:   # a secret the environment does not hold, say
        raise ValueError(f"the {cfg.environment} configuration does not resolve: {exc}") from exc
    return cfg


def config_variables(cfg) -> dict[str, str]:
    """The configuration as the variables it stands for (``VARIABLES``); unset keys (null) are left out."""
    from omegaconf import OmegaConf

    out = {}
    for variable, key in VARIABLES.items():
        value = OmegaConf.select(cfg, key)
        if value is None:
            continue
        if isinstance(value, bool):
            out[variable] = "1" if value else "0"
        elif OmegaConf.is_dict(value):   # serving.routes: {E0: match_outcome_e0} -> "E0=match_outcome_e0"
            out[variable] = ",".join(f"{k}={v}" for k, v in value.items())
        elif OmegaConf.is_list(value) or isinstance(value, list | tuple):
            out[variable] = ",".join(str(v) for v in value)
        else:
            out[variable] = str(value)
    return out


def overridden_keys(env: Mapping[str, str] | None = None) -> dict[str, tuple[str, str]]:
    """The configuration keys that variables set in ``env`` (the process's) override: key -> (variable, value)."""
    env = os.environ if env is None else env
    return {key: (variable, env[variable]) for variable, key in VARIABLES.items() if env.get(variable)}


def masked(value):
    """A configuration (plain containers) with secrets hidden: keys named like a password, secret or token, and
    the password part of URLs (``scheme://user:***@host``)."""
    if isinstance(value, Mapping):
        return {k: "***" if _SECRET_KEY.search(str(k)) and v is not None else masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r"\g<scheme>:***@", value)
    return value


def _choice(name: str, value: str | None, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (unset or empty: the first)."""
    chosen = (value or "").strip().lower() or choices[0]
    if chosen not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return chosen


def _flag(value: str | None) -> bool | None:
    if value is None or value.strip() == "" or value.strip().lower() == "auto":
        return None
    return value.strip().lower() in {"1", "true", "yes", "on"}


def parse_share(value: str | None) -> float:
    """TIME2BET_CHALLENGER_SHARE: a number in [0, 1]; unset or empty is 0."""
    if value is None or not value.strip():
        return 0.0
    share = float(value)
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"TIME2BET_CHALLENGER_SHARE must be between 0 and 1, got {value!r}")
    return share


def _requests(variable: str, value: str | None, default: int, zero: str) -> int:
    """A number of requests >= 0 from ``variable`` (0 means ``zero``); unset or empty is ``default``."""
    if value is None or not value.strip():
        return default
    count = int(value)
    if count < 0:
        raise ValueError(f"{variable} must be 0 ({zero}) or a positive number of requests, got {value!r}")
    return count


def parse_max_in_flight(value: str | None) -> int:
    """TIME2BET_MAX_IN_FLIGHT: an integer >= 0 (0: no limit); unset or empty is DEFAULT_MAX_IN_FLIGHT."""
    return _requests("TIME2BET_MAX_IN_FLIGHT", value, DEFAULT_MAX_IN_FLIGHT, "no limit")


def parse_max_running(value: str | None) -> int:
    """TIME2BET_MAX_RUNNING: an integer >= 0 (0: no cap); unset or empty is DEFAULT_MAX_RUNNING."""
    return _requests("TIME2BET_MAX_RUNNING", value, DEFAULT_MAX_RUNNING, "no cap")


def parse_executor(value: str | None) -> str:
    """TIME2BET_DAGSTER_EXECUTOR: ``default`` (unset: Dagster's multiprocess executor for launched runs) or
    ``celery`` (dagster-celery: every step a Celery task on TIME2BET_CELERY_BROKER_URL)."""
    executor = (value or "default").strip().lower() or "default"
    if executor not in EXECUTORS:
        raise ValueError(f"TIME2BET_DAGSTER_EXECUTOR must be one of {EXECUTORS}, got {value!r}")
    return executor


def parse_routes(value: str | None) -> tuple[tuple[str, str], ...]:
    """TIME2BET_ROUTES: ``division=registered model`` pairs, comma-separated ("E0=match_outcome_e0,SP1=..."): which
    registered model answers which division (the rest: the pooled model, TIME2BET_MODEL_NAME). Unset or empty: none."""
    routes: dict[str, str] = {}
    for item in (value or "").split(","):
        if not item.strip():
            continue
        division, _, model = (part.strip() for part in item.partition("="))
        if division not in DIVISIONS or not model:
            raise ValueError(f"TIME2BET_ROUTES items are DIVISION=model_name with a known division; got {item!r}")
        if division in routes:
            raise ValueError(f"TIME2BET_ROUTES routes division {division} twice")
        routes[division] = model
    return tuple(sorted(routes.items()))


@dataclass(frozen=True)
class Settings:
    home: Path
    source_url: str
    divisions: tuple[str, ...]
    first_season: str
    warehouse_url: str
    raw_zone: str
    crawl_timeout_s: float
    crawl_retries: int
    polite: bool | None
    mlflow_tracking_uri: str
    mlflow_artifacts: str
    s3_endpoint_url: str | None     # AWS_ENDPOINT_URL: an S3-compatible server (MinIO, moto) for the raw zone
    dagster_home: Path
    dagster_postgres: bool          # DAGSTER_PG_HOST set: Dagster's instance on PostgreSQL
    dagster_executor: str           # "default" or "celery": what executes the steps of launched runs
    celery_broker_url: str          # the broker dagster-celery's executor and workers share (RabbitMQ)
    celery_queue: str               # the Celery queue the steps go to (the workers listen on it)
    # the service (bento_service)
    model_name: str
    model_poll_s: float             # how often a worker reads the registry's aliases
    snapshot_poll_s: float          # how often a worker looks for a new serving snapshot export
    serving_snapshot_dir: Path      # where Dagster exports the serving snapshot (time2bet.serving_snapshot_store)
    challenger_share: float         # share of matches (stable by match id) answered by the challenger
    max_in_flight: int              # requests in flight per worker at most, then 503 overloaded (0: no limit)
    max_running: int                # of those, running at once; the others wait in order (0: no cap)
    service_workers: int            # BentoML worker processes of the service (each loads the models)
    redis_url: str                  # durable async jobs
    jobs_prefix: str
    features: str                   # TIME2BET_FEATURES: the service's feature rows from its "snapshot" or from "feast"
    feast_dir: Path                 # the Feast repository: feature_store.yaml, registry, dev offline and online stores
    feast_project: str              # the Feast project (Redis keys end with it)
    feast_online_store: str         # "sqlite" (a file in feast_dir) or "redis" (TIME2BET_REDIS_URL)
    jobs_max_pending: int           # jobs waiting in the queue at most (POST /jobs: 429 beyond)
    jobs_max_pending_bytes: int     # bytes of the requests of unfinished jobs at most (429 beyond)
    jobs_result_ttl_s: int          # how long a finished job's record and result are kept
    access_log: bool
    tracing: bool
    service_url: str                # where `time2bet ui` finds the service
    # from the configuration only (conf/): which environment, the candidates' hyper-parameters, the promotion gate
    environment: str
    hyperparameters: Mapping | None = field(hash=False)   # conf/model; None: time2bet.ml.training's own
    gate_policy: Mapping | None = field(hash=False)       # conf/gate; None: the gate's own defaults
    # the prediction ledger (time2bet.ledger)
    ledger_enabled: bool            # TIME2BET_LEDGER=0 turns the service's ledger off (benchmarks measure its cost)
    ledger_dir: Path                # segment files <ledger_dir>/<yyyy-mm-dd>/<writer>.jsonl
    ledger_flush_ms: int            # the flush bound: buffered records are written and fsynced this often at least
    ledger_max_buffered: int        # records buffered per writer at most (then dropped and counted)
    # monitoring (time2bet.monitoring, the Dagster area defs/monitoring)
    pushgateway_url: str | None     # a Prometheus Pushgateway the monitoring assets push to (None: textfile only)
    live_logloss_margin: float      # live log-loss above the version's promotion-time estimate by more: a warning
    # automatic retraining (time2bet.monitoring.retraining, the ml area's sensor retrain_when_needed)
    retrain_every_days: float       # the last training older than this: retrain (0: no scheduled retraining)
    retrain_feature_drift_share: float   # a week's share of drifted features from which to retrain (above 1: never)
    retrain_on_prediction_drift: bool
    retrain_on_target_drift: bool
    retrain_min_matches: int        # live quality triggers only when judged on at least this many matches
    # several models (time2bet.ml.routes): (division, registered model) pairs; other divisions: model_name (pooled)
    routes: tuple[tuple[str, str], ...] = ()
    # the model family (time2bet.ml.families) whose best version holds `champion`, the one served, and the one
    # training trains unless told otherwise (`time2bet train --family`); the other family is gated within itself
    model_family: str = FAMILIES[0]

    def model_for(self, division: str) -> str:
        """The registered model that answers ``division``: its route's, else the pooled model."""
        return dict(self.routes).get(division, self.model_name)

    @property
    def monitoring_dir(self) -> Path:
        """Where the monitoring assets write their reports, plots and exports (``$TIME2BET_HOME/monitoring``)."""
        return monitoring_dir(self.home)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, environment: str | None = None,
                 overrides: Sequence[str] = ()) -> Settings:
        """The settings of an environment (``environment``, else TIME2BET_ENV, else dev): its composed
        configuration (with Hydra ``overrides``), under the non-empty variables of ``env`` (the process's)."""
        env = os.environ if env is None else env
        return cls.from_config(load_config(env, environment=environment, overrides=overrides), env)

    @classmethod
    def from_config(cls, cfg, env: Mapping[str, str] | None = None) -> Settings:
        """The settings of a composed configuration (say the one ``@hydra.main`` hands its task), under the
        non-empty variables of ``env`` (the process's)."""
        from omegaconf import OmegaConf

        env = os.environ if env is None else env
        cfg = resolve_config(cfg, env)
        settings = cls.from_variables({**config_variables(cfg), **{k: v for k, v in env.items() if v}})
        return dataclasses.replace(
            settings, environment=cfg.environment, dagster_postgres=settings.dagster_postgres or cfg.dagster.postgres,
            hyperparameters=OmegaConf.to_container(cfg.model), gate_policy=OmegaConf.to_container(cfg.gate))

    @classmethod
    def from_variables(cls, env: Mapping[str, str]) -> Settings:
        """The settings from variables alone, over the built-in defaults (which equal the dev configuration's)."""
        home = Path(env.get("TIME2BET_HOME") or _default_home()).expanduser().resolve()
        divisions = tuple(
            d.strip() for d in env.get("TIME2BET_DIVISIONS", ",".join(DIVISIONS)).split(",") if d.strip()
        )
        unknown = [d for d in divisions if d not in DIVISIONS]
        if unknown:
            raise ValueError(f"TIME2BET_DIVISIONS has unknown division codes {unknown}; known: {sorted(DIVISIONS)}")
        first_season = env.get("TIME2BET_FIRST_SEASON", "1993-94")
        season_code(first_season)  # validates the label
        return cls(
            environment="dev", hyperparameters=None, gate_policy=None,   # set by from_env, from the configuration
            home=home,
            source_url=env.get("TIME2BET_SOURCE_URL", LIVE_SOURCE_URL).rstrip("/"),
            divisions=divisions,
            first_season=first_season,
            warehouse_url=env.get("TIME2BET_WAREHOUSE_URL") or f"duckdb:///{home / 'warehouse.duckdb'}",
            raw_zone=env.get("TIME2BET_RAW_ZONE") or str(home / "raw"),
            crawl_timeout_s=float(env.get("TIME2BET_CRAWL_TIMEOUT_S", "30")),
            crawl_retries=int(env.get("TIME2BET_CRAWL_RETRIES", "3")),
            polite=_flag(env.get("TIME2BET_POLITE")),
            mlflow_tracking_uri=env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home / 'mlflow.db'}",
            mlflow_artifacts=env.get("TIME2BET_MLFLOW_ARTIFACTS") or str(home / "mlartifacts"),
            s3_endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            dagster_home=Path(env.get("DAGSTER_HOME") or home / "dagster").expanduser().resolve(),
            dagster_postgres=bool(env.get("DAGSTER_PG_HOST")),
            dagster_executor=parse_executor(env.get("TIME2BET_DAGSTER_EXECUTOR")),
            celery_broker_url=env.get("TIME2BET_CELERY_BROKER_URL") or DEFAULT_CELERY_BROKER_URL,
            celery_queue=env.get("TIME2BET_CELERY_QUEUE") or DEFAULT_CELERY_QUEUE,
            model_name=env.get("TIME2BET_MODEL_NAME") or MODEL_NAME,
            model_poll_s=max(0.1, float(env.get("TIME2BET_MODEL_POLL_S") or 30.0)),
            snapshot_poll_s=max(0.1, float(env.get("TIME2BET_SNAPSHOT_POLL_S") or 30.0)),
            serving_snapshot_dir=Path(env.get("TIME2BET_SERVING_SNAPSHOT_DIR") or home / "serving-snapshot")
            .expanduser().resolve(),
            challenger_share=parse_share(env.get("TIME2BET_CHALLENGER_SHARE")),
            max_in_flight=parse_max_in_flight(env.get("TIME2BET_MAX_IN_FLIGHT")),
            max_running=parse_max_running(env.get("TIME2BET_MAX_RUNNING")),
            service_workers=max(1, int(env.get("TIME2BET_SERVICE_WORKERS") or 1)),
            redis_url=env.get("TIME2BET_REDIS_URL") or DEFAULT_REDIS_URL,
            jobs_prefix=env.get("TIME2BET_JOBS_PREFIX") or DEFAULT_JOBS_PREFIX,
            features=_choice("TIME2BET_FEATURES", env.get("TIME2BET_FEATURES"), ("snapshot", "feast")),
            feast_dir=Path(env.get("TIME2BET_FEAST_DIR") or home / "feast").expanduser().resolve(),
            feast_project=env.get("TIME2BET_FEAST_PROJECT") or "time2bet",
            feast_online_store=_choice("TIME2BET_FEAST_ONLINE_STORE", env.get("TIME2BET_FEAST_ONLINE_STORE"),
                                       ("sqlite", "redis")),
            jobs_max_pending=max(1, int(env.get("TIME2BET_JOBS_MAX_PENDING") or DEFAULT_JOBS_MAX_PENDING)),
            jobs_max_pending_bytes=max(1, int(env.get("TIME2BET_JOBS_MAX_PENDING_BYTES")
                                              or DEFAULT_JOBS_MAX_PENDING_BYTES)),
            jobs_result_ttl_s=max(1, int(env.get("TIME2BET_JOBS_RESULT_TTL_S") or DEFAULT_JOBS_RESULT_TTL_S)),
            access_log=env.get("TIME2BET_ACCESS_LOG") == "1",
            tracing=env.get("TIME2BET_TRACING") == "1",
            service_url=(env.get("TIME2BET_SERVICE_URL") or DEFAULT_SERVICE_URL).rstrip("/"),
            ledger_enabled=_flag(env.get("TIME2BET_LEDGER")) is not False,
            ledger_dir=Path(env.get("TIME2BET_LEDGER_DIR") or home / "ledger").expanduser().resolve(),
            ledger_flush_ms=max(1, int(env.get("TIME2BET_LEDGER_FLUSH_MS") or DEFAULT_LEDGER_FLUSH_MS)),
            ledger_max_buffered=max(1, int(env.get("TIME2BET_LEDGER_MAX_BUFFERED") or DEFAULT_LEDGER_MAX_BUFFERED)),
            pushgateway_url=(env.get("TIME2BET_PUSHGATEWAY_URL") or "").strip().rstrip("/") or None,
            live_logloss_margin=max(0.0, float(env.get("TIME2BET_LIVE_LOGLOSS_MARGIN") or DEFAULT_LIVE_LOGLOSS_MARGIN)),
            retrain_every_days=max(0.0, float(env.get("TIME2BET_RETRAIN_EVERY_DAYS") or DEFAULT_RETRAIN_EVERY_DAYS)),
            retrain_feature_drift_share=float(env.get("TIME2BET_RETRAIN_FEATURE_DRIFT_SHARE")
                                              or DEFAULT_RETRAIN_FEATURE_DRIFT_SHARE),
            retrain_on_prediction_drift=_flag(env.get("TIME2BET_RETRAIN_ON_PREDICTION_DRIFT")) is not False,
            retrain_on_target_drift=_flag(env.get("TIME2BET_RETRAIN_ON_TARGET_DRIFT")) is not False,
            retrain_min_matches=max(1, int(env.get("TIME2BET_RETRAIN_MIN_MATCHES") or DEFAULT_RETRAIN_MIN_MATCHES)),
            routes=parse_routes(env.get("TIME2BET_ROUTES")),
            model_family=_choice("TIME2BET_MODEL_FAMILY", env.get("TIME2BET_MODEL_FAMILY"), FAMILIES),
        )

    @property
    def crawl_cache_dir(self) -> Path:
        return self.home / "crawl-cache"
