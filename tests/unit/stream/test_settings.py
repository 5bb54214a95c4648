"""Settings: precedence, validation messages, secrets."""

from __future__ import annotations

import logging
from pathlib import Path

import confluent_kafka
import pytest
from confluent_kafka import Consumer

from seismo.stream.cli.common import parse_pairs
from seismo.stream.config.loader import load_retrain_settings, load_settings
from seismo.stream.errors import ConfigError
from seismo.stream.io.kafka import CONSUMER_DEFAULTS, PINNED_CONSUMER, client_config


def test_defaults_match_the_documented_contract():
    s = load_settings({"model": "m"}, env={})
    assert (s.input_topic, s.alerts_topic, s.dlq_topic, s.scores_topic) == (
        "sensor-events",
        "anomalies",
        "sensor-events.dlq",
        None,
    )
    assert (s.k, s.max_batch, s.linger_ms, s.learn_anomalies, s.device) == (
        3.0,
        4096,
        50,
        False,
        "auto",
    )


def test_the_device_rule_defaults_are_those_of_the_nab_benchmark():
    from seismo.stream.bench.series_detector import SeriesRules

    s = load_settings({"model": "m"}, env={})
    rules = SeriesRules()
    assert (s.threshold_scope, s.window_step) == ("model", 1)
    assert (s.smooth, s.device_history, s.level_history, s.level_warmup, s.k) == (
        rules.smooth, rules.history, rules.level_history, rules.level_warmup, rules.k)


def test_cli_beats_env_beats_file_beats_default(tmp_path):
    cfg = tmp_path / "seismo.toml"
    cfg.write_text('model = "from-file"\nk = 4.5\nmax_batch = 10\nlinger_ms = 7\n')
    env = {"SEISMO_K": "5.5", "SEISMO_MAX_BATCH": "20"}
    s = load_settings({"max_batch": 30}, config_file=cfg, env=env)
    assert s.max_batch == 30  # flag
    assert s.k == 5.5  # env over file
    assert s.linger_ms == 7  # file over default
    assert str(s.model) == "from-file"
    assert s.min_samples == 1000  # default


def test_env_carries_kafka_config_as_json_and_is_case_insensitive():
    s = load_settings(
        {"model": "m"}, env={"seismo_kafka_config": '{"security.protocol": "SASL_SSL"}'}
    )
    assert s.kafka_config == {"security.protocol": "SASL_SSL"}


@pytest.mark.parametrize(
    ("given", "needle"),
    [
        ({"model": "m", "k": -1}, "invalid setting k (--k)"),
        ({"model": "m", "linger_ms": "soon"}, "invalid setting linger_ms (--linger-ms)"),
        ({"model": "m", "no_such_thing": 1}, "no_such_thing"),
        ({}, "give exactly one of model (SEISMO_MODEL"),
        ({"model": "m", "model_store": "s"}, "give exactly one of model (SEISMO_MODEL"),
        ({"model": "m", "threshold_scope": "fleet"}, "(--threshold-scope)"),
        ({"model": "m", "level_history": 100, "level_warmup": 101},
         "level_warmup (101) cannot exceed level_history (100)"),
        ({"model": "m", "threshold_scope": "device", "threshold_space": "linear"},
         "threshold_scope device judges log errors"),
        ({"model": "m", "window_step": 6}, "window_step spaces the readings of a window"),
        ({"model": "m", "smooth": 0}, "invalid setting smooth (--smooth)"),
        ({"model": "m", "max_threshold_factor": 0.5},
         "max_threshold_factor must be above 1, or 0 for no bound (got 0.5)"),
        ({"model": "m", "max_threshold_factor": -1}, "(--max-threshold-factor)"),
    ],
)
def test_bad_settings_give_one_line_naming_the_setting(given, needle):
    with pytest.raises(ConfigError) as info:
        load_settings(given, env={})
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings({"model": "m"}, config_file=tmp_path / "nope.toml", env={})


def test_secrets_are_masked_in_the_loggable_view_and_repr(caplog):
    s = load_settings(
        {
            "model": "m",
            "redis_url": "rediss://u:hunter2@r:6380/0",
            "kafka_config": {"sasl.password": "hunter2", "sasl.username": "bob"},
        },
        env={},
    )
    with caplog.at_level(logging.INFO):
        logging.getLogger("t").info("settings %s %r", s.redacted(), s)
    assert "hunter2" not in caplog.text
    assert "bob" in caplog.text
    assert s.redis_url.get_secret_value() == "rediss://u:hunter2@r:6380/0"


def test_a_password_in_a_model_store_url_is_masked_in_the_loggable_view():
    """A reviewer's finding: plain settings that hold URLs were logged whole."""
    s = load_settings({"model_store": "https://ada:hunter2@store.example/models"}, env={})
    assert s.redacted()["model_store"] == "https://ada:***@store.example/models"
    assert "hunter2" not in repr(s)
    assert s.model_store == "https://ada:hunter2@store.example/models"


def test_user_kafka_config_passes_through_but_cannot_turn_on_auto_commit():
    config = client_config(
        "b:1",
        CONSUMER_DEFAULTS,
        {
            "enable.auto.commit": "true",
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "SCRAM-SHA-512",
        },
        PINNED_CONSUMER,
    )
    assert config["enable.auto.commit"] is False
    assert config["security.protocol"] == "SASL_SSL"
    assert config["bootstrap.servers"] == "b:1"


def test_the_fetch_queue_backoff_is_short_by_default_and_the_users_value_wins():
    # librdkafka's 1 s backoff held the scorer back (docs/benchmarks.md, "The raw ceiling")
    assert confluent_kafka.libversion()[1] >= 0x02040000  # what the project installs
    assert CONSUMER_DEFAULTS["fetch.queue.backoff.ms"] == 10
    mine = client_config("b:1", CONSUMER_DEFAULTS, {"fetch.queue.backoff.ms": "1000"},
                         PINNED_CONSUMER)  # fmt: skip
    assert mine["fetch.queue.backoff.ms"] == "1000"
    # librdkafka accepts the merged settings (an unknown property would raise here)
    Consumer({**client_config("127.0.0.1:1", CONSUMER_DEFAULTS, {}), "group.id": "g"}).close()


def test_kafka_config_pairs_keep_equals_signs_in_values():
    assert parse_pairs(["sasl.jaas.config=a=b"]) == {"sasl.jaas.config": "a=b"}
    assert parse_pairs(None) is None


def test_a_misspelt_environment_variable_is_an_error_naming_it():
    with pytest.raises(ConfigError) as info:
        load_settings({"model": "m"}, env={"SEISMO_LINGER_MSX": "5"})
    assert str(info.value) == (
        "unknown environment variable SEISMO_LINGER_MSX: not a seismo setting "
        "(did you mean SEISMO_LINGER_MS?)"
    )


def test_sidecar_and_test_variables_are_not_unknown_to_the_scorer():
    env = {"SEISMO_INTERVAL_S": "60", "SEISMO_TEST_KAFKA": "127.0.0.1:1", "SEISMO_DATA": "/d"}
    assert load_settings({"model": "m"}, env=env).model == Path("m")


def test_a_redis_url_of_another_scheme_is_refused_without_echoing_it():
    with pytest.raises(ConfigError) as info:
        load_settings({"model": "m", "redis_url": "http://:s3cret@h:6379"}, env={})
    message = str(info.value)
    assert message.startswith("invalid setting redis_url (--redis-url): ")
    assert "redis://, rediss:// or unix://" in message and "s3cret" not in message


@pytest.mark.parametrize("text, expected", [
    ("max_batchh = 10\n", "max_batchh is not a setting of this command (did you mean max_batch?)"),
    ("[score]\nk = 3\n", "[score] is not a setting of this command (the file holds flat"),
    ("k 3\n", "invalid configuration in "),
])  # fmt: skip
def test_a_config_file_mistake_is_one_line_naming_the_file(tmp_path, text, expected):
    """A stranger's finding: a misspelt key named an environment variable that does not
    exist (SEISMO_MAX_BATCHH) with no suggestion, and a TOML syntax error named no file."""
    cfg = tmp_path / "scorer.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings({"model": "m"}, config_file=cfg, env={})
    message = str(caught.value)
    assert expected in message and str(cfg) in message and "\n" not in message
    assert "SEISMO_" not in message


@pytest.mark.parametrize("where", ["flag", "env", "file"])
def test_a_bad_value_names_where_it_came_from(tmp_path, where):
    """A stranger's finding: a bad value in the config file was reported as its
    environment variable (SEISMO_MAX_BATCH), which the user had never set."""
    cfg = tmp_path / "scorer.toml"
    cfg.write_text('max_batch = "lots"\n' if where == "file" else "k = 3\n")
    given = {"model": "m", "max_batch": "lots"} if where == "flag" else {"model": "m"}
    env = {"SEISMO_MAX_BATCH": "lots"} if where == "env" else {}
    with pytest.raises(ConfigError) as caught:
        load_settings(given, config_file=cfg, env=env)
    expected = {"flag": "--max-batch", "env": "SEISMO_MAX_BATCH",
                "file": f"max_batch in {cfg}"}[where]  # fmt: skip
    assert str(caught.value).startswith(f"invalid setting max_batch ({expected}): ")


def test_an_environment_variable_that_is_not_json_names_the_variable():
    """A stranger's finding: a JSON object cut short in SEISMO_KAFKA_CONFIG gave 'error
    parsing value for field "kafka_config" from source "EnvSettingsSource"'."""
    with pytest.raises(ConfigError) as caught:
        load_settings({"model": "m"}, env={"SEISMO_KAFKA_CONFIG": '{"security.protocol": "SSL"'})
    assert str(caught.value).startswith(
        "invalid setting kafka_config (SEISMO_KAFKA_CONFIG): not valid JSON")


def test_one_config_file_serves_the_scorer_and_the_sidecar(tmp_path):
    """A stranger's finding: the environment may hold every command's settings, but a
    config file with the sidecar's interval_s stopped the scorer ('interval_s is not a
    setting of this command'). A key of another seismo command is left out; a key of
    none is still refused."""
    cfg = tmp_path / "seismo.toml"
    cfg.write_text('model_store = "/models"\nk = 4.0\ninterval_s = 600.0\n')
    assert load_settings({}, config_file=cfg, env={}).k == 4.0
    assert load_retrain_settings({}, config_file=cfg, env={}).interval_s == 600.0
    cfg.write_text('model_store = "/models"\ninterval_ss = 600.0\n')
    with pytest.raises(ConfigError, match="interval_ss is not a setting of this command"):
        load_retrain_settings({}, config_file=cfg, env={})


def test_the_retrainer_and_evaluate_refuse_a_threshold_bound_the_scorer_refuses():
    """Only the scorer checked --max-threshold-factor: the retrainer took 0.5 (a bound
    at half the calibration threshold) and evaluate crashed on -1 (a reviewer's finding)."""
    from seismo.stream.offline.evaluate import streaming_settings

    with pytest.raises(ConfigError, match="max_threshold_factor must be above 1, or 0"):
        load_retrain_settings({"model_store": "/tmp/x", "max_threshold_factor": 0.5}, env={})
    for bad in (0.5, -1.0):
        with pytest.raises(ConfigError, match="--max-threshold-factor must be above 1, or 0"):
            streaming_settings(None, None, None, 1, bad)
    assert streaming_settings(None, None, None, 1, 0.0).max_threshold_factor == 0.0
