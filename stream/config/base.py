"""What every settings class shares: the ``SEISMO_`` prefix, secrets kept out of
logs, a Redis URL check, and one validation that turns every problem into a
one-line :class:`~seismo.stream.errors.ConfigError`.

Precedence, for every command: command-line flags > ``SEISMO_*`` environment
variables > an optional TOML config file (``--config``, flat ``key = value``
using the field names) > defaults. :func:`validate` is given the environment
variables some seismo command reads (:func:`seismo.stream.config.loader.known_env`)
so that a misspelt one is refused, not ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from seismo.stream.errors import ConfigError

ENV_PREFIX = "SEISMO_"
_SECRET_WORDS = ("password", "secret", "token", "key")


_URL_PASSWORD = re.compile(
    r"((?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{0,31}://[^/:@\s]{0,256}:)[^@/\s]{0,256}@"
)


def mask_url_passwords(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` in it masked.

    >>> mask_url_passwords("https://ada:hunter2@store.example/models")
    'https://ada:***@store.example/models'
    >>> mask_url_passwords("s3://bucket/models"), mask_url_passwords("127.0.0.1:9092")
    ('s3://bucket/models', '127.0.0.1:9092')
    >>> mask_url_passwords("https://store.example:8443/models/v@1")  # a port stays
    'https://store.example:8443/models/v@1'
    """
    return _URL_PASSWORD.sub(r"\1***@", text)


def check_threshold_factor(value: float) -> float:
    """The scorers' bound on the threshold (``max_threshold_factor``): above 1, or 0.

    >>> check_threshold_factor(10.0), check_threshold_factor(0.0)
    (10.0, 0.0)
    >>> check_threshold_factor(0.5)
    Traceback (most recent call last):
    ...
    ValueError: max_threshold_factor must be above 1, or 0 for no bound (got 0.5)
    """
    if value < 0 or 0 < value <= 1:
        raise ValueError(f"max_threshold_factor must be above 1, or 0 for no bound "
                         f"(got {value:g})")  # fmt: skip
    return value


def redact_redis_url(url: str) -> str:
    """A Redis URL safe to log: its password masked (in the user part, or any query
    parameter named like a secret: ``password``, ``ssl_password``, ...), the rest
    shown, so a log says which Redis a command uses (a stranger could not tell it from
    a fully masked ``**********``). A URL that does not parse plainly (an ``@`` beyond
    the host part: a password holding ``/``, ``?`` or ``#``) is masked whole.

    >>> redact_redis_url("redis://127.0.0.1:6379/0"), redact_redis_url("redis://:pw@h:1/0")
    ('redis://127.0.0.1:6379/0', 'redis://:***@h:1/0')
    >>> redact_redis_url("rediss://ada:pw@h/0?password=pw&db=1&ssl_password=x")
    'rediss://ada:***@h/0?password=***&db=1&ssl_password=***'
    >>> redact_redis_url("redis://h/0?%70assword=pw")
    'redis://h/0?%70assword=***'
    >>> redact_redis_url("redis://:12/34@h:6379/0"), redact_redis_url("redis://u:1#2@h/0")
    ('**********', '**********')
    >>> redact_redis_url("redis://h/0?password=se#cret"), redact_redis_url("redis://h/0?password=a&b")
    ('redis://h/0?password=***#***', 'redis://h/0?password=***&***')
    >>> redact_redis_url("redis://[::1"), redact_redis_url("no url at all")
    ('**********', '**********')
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError:
        return "**********"
    beyond = parts.path + parts.query + parts.fragment
    if not parts.scheme or "@" in beyond or (not parts.netloc and parts.scheme != "unix"):
        return "**********"
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        name, colon, _ = user.partition(":")
        netloc = f"{name}{colon}{'***' if colon else ''}@{host}"
    query = "&".join(_redacted_pair(pair) for pair in parts.query.split("&")) if parts.query else ""
    # a Redis URL has no fragment: one is the tail of a password holding "#"
    return urlunsplit((parts.scheme, netloc, parts.path, query, "***" if parts.fragment else ""))


def _redacted_pair(pair: str) -> str:
    """``name=value`` of a query, the value masked when the name is a secret's; an item
    without ``=`` (the tail of a password holding ``&``) masked whole."""
    name, eq, _ = pair.partition("=")
    if not eq:
        return "***" if pair else pair
    secret = any(word in unquote(name).lower() for word in _SECRET_WORDS)
    return f"{name}{eq}***" if secret else pair


def redact_kafka_config(config: Mapping[str, str]) -> dict[str, str]:
    """``config`` with the values of secret keys masked (``***``).

    Masked: every ``sasl.*`` setting except the few that name, not prove, an
    identity (the mechanism, the user name, the Kerberos
    service and principal, the OAUTHBEARER method, client id and scope), so
    ``sasl.password``, ``sasl.oauthbearer.config``,
    ``sasl.oauthbearer.client.secret``, ``sasl.oauthbearer.extensions``,
    ``sasl.kerberos.keytab`` and any new one are; and any key naming a
    password, secret, token, key, credential, PEM or JAAS setting
    (``ssl.key.password``, ``ssl.key.pem``, ``ssl.keystore.password``...),
    except the public certificates ``ssl.ca.pem`` and ``ssl.certificate.pem``.
    Keys are compared without case or surrounding blanks.

    >>> redact_kafka_config({"sasl.password": "x", "sasl.mechanism": "PLAIN",
    ...                      "sasl.oauthbearer.config": "principal=a secret=b",
    ...                      "ssl.key.pem": "-----BEGIN", "ssl.ca.location": "/ca.pem"})
    {'sasl.password': '***', 'sasl.mechanism': 'PLAIN', 'sasl.oauthbearer.config': '***', \
'ssl.key.pem': '***', 'ssl.ca.location': '/ca.pem'}
    """
    public_sasl = {
        "sasl.mechanism", "sasl.mechanisms", "sasl.username", "sasl.kerberos.service.name",
        "sasl.kerberos.principal", "sasl.kerberos.min.time.before.relogin",
        "sasl.oauthbearer.method", "sasl.oauthbearer.client.id", "sasl.oauthbearer.scope",
    }  # fmt: skip
    public_pem = {"ssl.ca.pem", "ssl.certificate.pem"}
    words = (*_SECRET_WORDS, "credential", "pem", "jaas")

    def secret(key: str) -> bool:
        key = key.strip().lower()
        if key.startswith("sasl."):
            return key not in public_sasl
        return key not in public_pem and any(w in key for w in words)

    return {k: ("***" if secret(k) else v) for k, v in config.items()}


REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
#: ``SEISMO_*`` variables that are no setting but are read on purpose.
OTHER_ENV = ("SEISMO_DATA",)
OTHER_ENV_PREFIXES = ("SEISMO_TEST_",)


def check_redis_url(url: SecretStr) -> SecretStr:
    """Refuse a Redis URL of another scheme, without echoing it (it may hold a password).

    >>> check_redis_url(SecretStr("rediss://:pw@h:6380/0")).get_secret_value()[:9]
    'rediss://'
    >>> check_redis_url(SecretStr("http://h:6379"))
    Traceback (most recent call last):
    ...
    ValueError: must start with redis://, rediss:// or unix://
    """
    if not url.get_secret_value().startswith(REDIS_SCHEMES):
        raise ValueError("must start with redis://, rediss:// or unix://")
    return url


def unknown_env(env: Mapping[str, str], known: set[str]) -> str | None:
    """The first ``SEISMO_*`` variable that names no setting, with a suggestion.

    >>> unknown_env({"SEISMO_LINGER_MSX": "5", "PATH": "/bin"}, {"SEISMO_LINGER_MS"})
    'SEISMO_LINGER_MSX: not a seismo setting (did you mean SEISMO_LINGER_MS?)'
    >>> unknown_env({"SEISMO_TEST_KAFKA": "h:1", "SEISMO_DATA": "d"}, set()) is None
    True
    """
    import difflib

    for name in sorted(env):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in known or upper in OTHER_ENV:
            continue
        if upper.startswith(OTHER_ENV_PREFIXES):
            continue
        close = difflib.get_close_matches(upper, sorted(known), n=1)
        return f"{upper}: not a seismo setting" + (f" (did you mean {close[0]}?)" if close else "")
    return None


class RedactedSettings(BaseSettings):
    """Settings whose ``redacted()`` view and ``repr`` mask every secret.

    Secret fields (``SecretStr``) show as asterisks, secret-looking
    ``kafka_config`` keys as ``***``, paths as text. ``FLAG_NAMES`` maps a
    field to its command-line flag where the flag is not ``--field-name``
    (error messages name the flag).
    """

    FLAG_NAMES: ClassVar[dict[str, str]] = {}

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict safe to log: secrets masked, and the password of any
        URL in a plain setting too (``model_store`` may be ``https://user:pw@...``)."""
        out = self.model_dump()
        for name, value in out.items():
            if name == "redis_url" and isinstance(value, SecretStr):
                out[name] = redact_redis_url(value.get_secret_value())
            elif isinstance(value, SecretStr | Path):
                out[name] = str(value)
            elif isinstance(value, str):
                out[name] = mask_url_passwords(value)
        if "kafka_config" in out:
            out["kafka_config"] = redact_kafka_config(out["kafka_config"])
        return out

    def __repr_args__(self) -> Any:
        """``repr`` shows the redacted view, so a logged settings object leaks nothing."""
        return list(self.redacted().items())


S = TypeVar("S", bound=RedactedSettings)


def _with_sources(
    base: type[S], config_file: Path | None, env: Mapping[str, str], shared: set[str]
) -> type[S]:
    """A subclass of ``base`` reading the given env mapping and TOML file (``shared``: the
    settings of every seismo command, which the file may hold; see :class:`_TomlSource`)."""

    class _Loaded(base):  # type: ignore[valid-type,misc]
        model_config = SettingsConfigDict(**base.model_config)

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: list[PydanticBaseSettingsSource] = [init_settings]
            sources.append(_MappingEnvSource(settings_cls, env))
            if config_file is not None:
                sources.append(_TomlSource(settings_cls, config_file, shared))
            return tuple(sources)

    return _Loaded


class _TomlSource(PydanticBaseSettingsSource):
    """A flat TOML config file. One file may serve every seismo command, as the
    environment does: a key that is a setting of another command (``interval_s`` in
    the scorer's) is left out; a key that is no command's setting stays, and is
    refused with its did-you-mean (:func:`unknown_key`)."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path, shared: set[str]) -> None:
        super().__init__(settings_cls)
        import tomllib

        data = tomllib.loads(path.read_text(encoding="utf-8"))  # a syntax error: ValueError
        own = settings_cls.model_fields
        self._data = {k: v for k, v in data.items() if k in own or k not in shared}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


class _MappingEnvSource(PydanticBaseSettingsSource):
    """Environment source over an explicit mapping (so tests need not patch os.environ)."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        from pydantic_settings import EnvSettingsSource

        self._inner = EnvSettingsSource(settings_cls, case_sensitive=False)
        self._inner.env_vars = {k.lower(): v for k, v in env.items()}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._inner.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        return self._inner()


def validate(
    cls: type[S],
    cli: Mapping[str, Any],
    *,
    environ: Mapping[str, str],
    known: set[str],
    config_file: Path | None = None,
) -> S:
    """Validate settings of class ``cls`` once, turning every problem into a one-line ConfigError.

    Parameters
    ----------
    cls : type
        A settings class with ``env_prefix`` ``SEISMO_``.
    cli : mapping
        Values given on the command line (``None`` values are ignored).
    environ : mapping
        The environment variables.
    known : set of str
        Every ``SEISMO_*`` variable some seismo command reads; any other is refused.
    config_file : Path, optional
        A TOML file with flat ``field = value`` lines.
    """
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"config file {config_file} does not exist")
    given = {k: v for k, v in cli.items() if v is not None}
    stray = unknown_env(environ, known)
    if stray:
        raise ConfigError(f"unknown environment variable {stray}")
    shared = {name.removeprefix(ENV_PREFIX).lower() for name in known}
    loaded = _with_sources(cls, config_file, environ, shared)
    try:
        return loaded(**given)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = ".".join(str(p) for p in err["loc"])
        if not name:
            message = err["msg"].removeprefix("Value error, ")
            raise ConfigError(f"invalid settings: {message}") from None
        field = name.split(".")[0]
        if err["type"] == "extra_forbidden":  # only the config file can hold such a key
            raise ConfigError(unknown_key(config_file, field, err.get("input"), cls)) from None
        flag = cls.FLAG_NAMES.get(field)
        key = str(err["loc"][1]) if len(err["loc"]) > 1 else None
        where = source_of(field, given, environ, config_file, flag, key)
        raise ConfigError(f"invalid setting {name} ({where}): {err['msg']}") from None
    except ValueError as exc:  # e.g. TOML syntax, or an env value that is not JSON
        unparsed = _unparsed_env_field(str(exc))
        if unparsed is not None:
            example = ', e.g. {"security.protocol": "SSL"}' if unparsed == "kafka_config" else ""
            raise ConfigError(f"invalid setting {unparsed} ({ENV_PREFIX}{unparsed.upper()}): "
                              f"not valid JSON (the variable holds a JSON value{example})"
                              ) from None  # fmt: skip
        where = f" in {config_file}" if config_file is not None else ""
        raise ConfigError(f"invalid configuration{where}: {exc}") from None


def _unparsed_env_field(message: str) -> str | None:
    """The field whose environment variable pydantic-settings could not parse as JSON.

    >>> _unparsed_env_field('error parsing value for field "kafka_config" from source '
    ...                     '"_MappingEnvSource"')
    'kafka_config'
    >>> _unparsed_env_field("Invalid statement (at line 1, column 3)") is None
    True
    """
    import re

    found = re.match(r'error parsing value for field "(\w+)" from source "\w*Env\w*"', message)
    return found.group(1) if found else None


def source_of(
    field: str, given: Mapping[str, Any], environ: Mapping[str, str], config_file: Path | None,
    flag: str | None = None, key: str | None = None,
) -> str:  # fmt: skip
    """Where the value of setting ``field`` came from, as an error names it: its flag
    (``flag``, or the field's name as one), its environment variable, or the config
    file (the order in which they win). ``key``: the entry of a mapping setting
    (``kafka_config``) whose value is wrong; the sources' mappings are merged, so the
    one that holds it is named.

    >>> source_of("max_batch", {"max_batch": 0}, {}, None)
    '--max-batch'
    >>> source_of("max_batch", {}, {"seismo_max_batch": "x"}, Path("s.toml"))
    'SEISMO_MAX_BATCH'
    >>> source_of("max_batch", {}, {}, None)
    'SEISMO_MAX_BATCH'
    >>> source_of("kafka_config", {"kafka_config": {"client.id": "x"}},
    ...           {"SEISMO_KAFKA_CONFIG": '{"acks": 1}'}, None, key="acks")
    'SEISMO_KAFKA_CONFIG'
    """
    variable = ENV_PREFIX + field.upper()
    from_env = next((v for name, v in environ.items() if name.upper() == variable), None)
    if key is not None:
        flagged = given.get(field)
        if isinstance(flagged, Mapping) and key in flagged:
            return flag or "--" + field.replace("_", "-")
        if from_env is not None and key in _json_keys(from_env):
            return variable
        if config_file is not None and field in _file_keys(config_file):
            return f"{field} in {config_file}"
        return variable
    if field in given:
        return flag or "--" + field.replace("_", "-")
    if from_env is not None:
        return variable
    if config_file is not None and field in _file_keys(config_file):
        return f"{field} in {config_file}"
    return variable


def _json_keys(text: str) -> set[str]:
    """The keys of a JSON object (none when it is not one)."""
    import json

    try:
        parsed = json.loads(text)
    except ValueError:
        return set()
    return set(parsed) if isinstance(parsed, dict) else set()


def _file_keys(config_file: Path) -> set[str]:
    """The keys of a TOML config file (none when it cannot be read)."""
    import tomllib

    try:
        return set(tomllib.loads(config_file.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return set()


def unknown_key(config_file: Path | None, key: str, value: object, cls: type[BaseSettings]) -> str:
    """The one line for a config-file key that names no setting of ``cls``.

    >>> from seismo.stream.config.settings import ScorerSettings
    >>> unknown_key(Path("s.toml"), "max_batchh", 10, ScorerSettings)
    's.toml: max_batchh is not a setting of this command (did you mean max_batch?)'
    >>> print(unknown_key(Path("s.toml"), "score", {"k": 3}, ScorerSettings))  # doctest: +ELLIPSIS
    s.toml: [score] is not a setting of this command (the file holds flat name = value lines...)
    """
    import difflib

    where = f"{config_file}: " if config_file is not None else ""
    if isinstance(value, dict):
        return (f"{where}[{key}] is not a setting of this command (the file holds flat "
                "name = value lines, no [sections])")  # fmt: skip
    close = difflib.get_close_matches(key, sorted(cls.model_fields), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"{where}{key} is not a setting of this command{hint}"
