"""Settings layering: defaults < site < user < environment < arguments, with origins."""

from __future__ import annotations

import pytest

from qmio_hpc.config import Settings
from qmio_hpc.errors import ConfigError


def load(tmp_path, env=None, site="", user="", overrides=None):
    (tmp_path / "site.toml").write_text(site)
    (tmp_path / "user.toml").write_text(user)
    base = {"QMIO_SITE_CONFIG": str(tmp_path / "site.toml"),
            "QMIO_USER_CONFIG": str(tmp_path / "user.toml"), "HOME": str(tmp_path)}
    return Settings.load(overrides, environ={**base, **(env or {})})


def test_defaults(tmp_path):
    s = load(tmp_path)
    assert s.endpoint == "emulator" and s.origin("endpoint") == "default"
    assert s.get("slurm.partition") == "qpu"
    assert s.store.endswith(".qmio-hpc")


def test_each_layer_overrides_the_one_before(tmp_path):
    site = '[slurm]\npartition = "site-p"\nqos = "site-q"\naccount = "site-a"\nreservation = "r"\n'
    user = '[slurm]\nqos = "user-q"\naccount = "user-a"\nreservation = "r2"\n'
    s = load(tmp_path, env={"QMIO_SLURM_ACCOUNT": "env-a", "QMIO_SLURM_RESERVATION": "r3"},
             site=site, user=user, overrides={"slurm.reservation": "arg"})
    assert s.get("slurm.partition") == "site-p" and "site file" in s.origin("slurm.partition")
    assert s.get("slurm.qos") == "user-q" and "user file" in s.origin("slurm.qos")
    assert s.get("slurm.account") == "env-a"
    assert s.origin("slurm.account") == "environment QMIO_SLURM_ACCOUNT"
    assert s.get("slurm.reservation") == "arg" and s.origin("slurm.reservation") == "argument"


def test_zmq_server_is_the_endpoint_and_qmio_endpoint_wins(tmp_path):
    s = load(tmp_path, env={"ZMQ_SERVER": "tcp://qpu:5556"})
    assert s.endpoint == "tcp://qpu:5556" and s.resolved_endpoint == "tcp://qpu:5556"
    s = load(tmp_path, env={"ZMQ_SERVER": "tcp://qpu:5556", "QMIO_ENDPOINT": "tcp://other:1"})
    assert s.endpoint == "tcp://other:1"


def test_store_follows_dollar_store(tmp_path):
    s = load(tmp_path, env={"STORE": str(tmp_path / "lustre")})
    assert s.store == str(tmp_path / "lustre" / ".qmio-hpc")


def test_types_are_converted_and_checked(tmp_path):
    s = load(tmp_path, env={"QMIO_SHOTS": "42", "QMIO_EMULATOR_TIME_MODEL": "yes",
                            "QMIO_SLURM_MODULES": "qmio-run, qiskit"})
    assert s.shots == 42 and s.emulator_time_model is True
    assert s.get("slurm.modules") == ["qmio-run", "qiskit"]
    with pytest.raises(ConfigError, match="QMIO_SHOTS.*not a valid int"):
        load(tmp_path, env={"QMIO_SHOTS": "many"})
    with pytest.raises(ConfigError, match="executor.*one of"):
        load(tmp_path, env={"QMIO_EXECUTOR": "cloud"})


def test_a_list_item_holding_a_comma_is_given_as_a_json_array(tmp_path):
    s = load(tmp_path, env={"QMIO_SLURM_EXTRA_DIRECTIVES": '["--mail-type=END,FAIL", "--mem=4G"]'})
    assert s.get("slurm.extra_directives") == ["--mail-type=END,FAIL", "--mem=4G"]
    with pytest.raises(ConfigError, match="QMIO_SLURM_EXTRA_DIRECTIVES"):
        load(tmp_path, env={"QMIO_SLURM_EXTRA_DIRECTIVES": '["--mem=4G"'})
    with pytest.raises(ConfigError, match="QMIO_SLURM_EXTRA_DIRECTIVES.*list of strings"):
        load(tmp_path, env={"QMIO_SLURM_EXTRA_DIRECTIVES": '[1, 2]'})


def test_bad_files_are_named(tmp_path):
    with pytest.raises(ConfigError, match="user.toml"):
        load(tmp_path, user="this is = = not toml")
    with pytest.raises(ConfigError, match="unknown setting.*colour"):
        load(tmp_path, site='colour = "red"\n')


def test_bad_endpoint_is_explained(tmp_path):
    with pytest.raises(ConfigError, match="tcp://host:5556"):
        load(tmp_path, env={"ZMQ_SERVER": "qpu-node:5556"})


def test_path_settings_expand_home_and_variables(tmp_path):
    site = '[slurm]\ntemplate_dir = "${SITE_ROOT}/templates"\n'
    s = load(tmp_path, site=site, user='store = "$LUSTRE/qmio"\ncalibration_dir = "~/cal"\n',
             env={"LUSTRE": "/lustre/u1", "SITE_ROOT": "/etc/qmio"})
    assert s.store == "/lustre/u1/qmio"
    assert s.get("calibration_dir") == str(tmp_path / "cal")  # HOME is tmp_path here
    assert s.get("slurm.template_dir") == "/etc/qmio/templates"
    with pytest.raises(ConfigError, match=r"setting 'store' \(user file .*\$LUSTRE.*not set"):
        load(tmp_path, user='store = "$LUSTRE/qmio"\n')
