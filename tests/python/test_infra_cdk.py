"""infra/cdk: synthesizes offline, lint-clean, and defines exactly the loop template.yaml defines.

The no-drift guarantee: the DriftLoop construct (infra/cdk/lib/drift-loop.ts, L2 constructs and
RustFunctions written by hand) takes its props from lib/parameters.generated.ts, generated from
template.yaml's Parameters (checked current here); and this test compares the synthesized app
(template.yaml's parameters as CfnParameters, SAM logical IDs) with the SAM-transformed
template.yaml resource by resource — every rule (pattern,
schedule, bus, targets, retry policy, dead-letter queue), permission, queue and queue policy, the
alarm, the dashboard, the bucket, the log groups, each function's runtime, architecture, memory,
timeout, environment, logging and dead-letter config, and each function's effective permissions
(action x resource x condition), the control bus and its policy — under the defaults and with
every condition flipped. The construct's own tests (infra/cdk/test, aws-cdk-lib/assertions under
`node --test`) run here too.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path

import pytest

from test_infra_templates import MODES
from test_infra_support import (
    CDK, INFRA, cdk_synth_dir, cdk_synth_output, cdk_template, cdk_template_path, cfn, cfn_lint_bin, checkov, explain,
    offline_env, run, sam_template, sam_transformed,
)


def cdk_params_render(template: dict) -> str:
    import yaml
    import cdk_params  # infra/tools

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "template.yaml"
        path.write_text(yaml.safe_dump(template))
        return cdk_params.render(path)

VARIANTS = {
    "defaults": {},
    "flipped": {"ProductionEndpointName": "", "RetrainSchedule": "", "AlarmFollowsModel": "false",
                "MetricsNamespace": "driftloop/quality",
                "CatalogueS3Uri": "s3://driftloop-config/catalogue/models.json"},
    # The conditions the others leave at their defaults: staging labels, control principals,
    # production autoscaling and rollback alarms, a named data bucket, feature names, no staging monitor.
    "opted-in": {"StagingGroundTruthPrefix": "ground-truth/churn-staging",
                 "ControlPrincipals": ["arn:aws:iam::123456789012:role/ops", "arn:aws:iam::123456789012:role/ci"],
                 "ProductionAutoScalingMaxCapacity": "4", "ProductionRollbackAlarms": "churn-prod-5xx,churn-prod-latency",
                 "DataBucketName": "churn-loop-data", "FeatureNames": "churn,account_length,intl_plan",
                 "PredictionBaselineKey": "baselines/prediction_statistics.json", "PredictionFeature": "_c0"},
    "staging-off": {"MonitorStaging": "false", "AlarmPipelinesPattern": "fraud-*", "AlarmPipelines": "fraud-*=fraud-build"},
}
VARIANTS.update(MODES)  # Forecast, batch transform (two layouts), data quality only


def _normalize(model: dict) -> dict:
    for f in model["functions"].values():
        f["permissions"]["trust"] = sorted(
            json.dumps({k: sorted(v if isinstance(v, list) else [v]) for k, v in json.loads(p).items()}, sort_keys=True)
            for p in f["permissions"]["trust"]
        )
    return model


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_cdk_defines_the_same_loop_as_the_sam_template(variant):
    sam = _normalize(cfn.loop_model(sam_transformed(), VARIANTS[variant]))
    cdk = _normalize(cfn.loop_model(cdk_template(), VARIANTS[variant]))
    assert sam["parameters"] == cdk["parameters"]
    assert sorted(sam["resources"]) == sorted(cdk["resources"]), "resources differ"
    for lid in sam["resources"]:
        assert sam["resources"][lid] == cdk["resources"][lid], f"{lid} differs"
    assert sorted(sam["functions"]) == sorted(cdk["functions"])
    for fn in sam["functions"]:
        for key in sam["functions"][fn]:
            assert sam["functions"][fn][key] == cdk["functions"][fn][key], f"{fn}.{key} differs"
    assert sam == cdk


def test_comparison_notices_drift():
    """The comparison is not vacuous: a changed pattern, statement or variable is caught."""
    base = cfn.loop_model(cdk_template())
    t = json.loads(json.dumps(cdk_template()))
    t["Resources"]["RetrainOnAlarmRule"]["Properties"]["EventPattern"]["detail"]["state"]["value"] = ["ALARM", "OK"]
    assert cfn.loop_model(t) != base
    t = json.loads(json.dumps(cdk_template()))
    t["Resources"]["RetrainOnAlarmFunctionRolePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]["Resource"] = "*"
    assert cfn.loop_model(t)["functions"]["RetrainOnAlarmFunction"] != base["functions"]["RetrainOnAlarmFunction"]
    t = json.loads(json.dumps(cdk_template()))
    t["Resources"]["CustomMetricsFunction"]["Properties"]["Environment"]["Variables"]["WINDOW_MINUTES"] = "30"
    assert cfn.loop_model(t) != base


def test_cdk_functions_are_rust_functions_on_arm64():
    t = cdk_template()
    fns = {k: r for k, r in t["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
    assert sorted(fns) == sorted(cfn.FUNCTIONS)
    for r in fns.values():
        p = r["Properties"]
        assert p["Runtime"] == "provided.al2023" and p["Architectures"] == ["arm64"] and p["Handler"] == "bootstrap"
        assert "S3Key" in p["Code"], "code is a (cargo lambda) asset"
    # cargo-lambda-cdk's RustFunction is what builds them, from the workspace manifest.
    src = (CDK / "lib" / "drift-loop.ts").read_text()
    assert "new RustFunction(" in src and "binaryName: o.binary" in src


def test_cdk_synth_is_offline_and_deterministic():
    assert "WARNING" not in cdk_synth_output() and "Error" not in cdk_synth_output(), cdk_synth_output()
    t = cdk_template()
    text = json.dumps(t)
    assert "123456789012" not in text and "us-east-1" not in text, "no account or region baked in"
    manifest = json.loads((cdk_template_path().parent / "manifest.json").read_text())
    assert not manifest.get("missing"), f"context lookups: {manifest.get('missing')}"


def test_cfn_lint_cdk_template_is_clean():
    p = run([cfn_lint_bin(), cdk_template_path()])
    assert p.returncode == 0, explain(p)


def test_checkov_cdk_template_is_clean_or_justified():
    p = checkov(cdk_template_path())
    assert p.returncode == 0, explain(p)
    assert "Failed checks: 0" in p.stdout, explain(p)


def test_cdk_versions_are_pinned_and_locked():
    pkg = json.loads((CDK / "package.json").read_text())
    lock = json.loads((CDK / "package-lock.json").read_text())
    for section in ("dependencies", "devDependencies"):
        for name, version in pkg[section].items():
            assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name}@{version} is not an exact version"
            assert lock["packages"][f"node_modules/{name}"]["version"] == version, f"{name}: lock differs"
    assert {"aws-cdk-lib", "cargo-lambda-cdk", "constructs"} <= set(pkg["dependencies"])


def test_cdk_cli_synth_works_offline(tmp_path):
    """`npx cdk synth` itself (the pinned CLI reads the library's cloud assembly), no network."""
    cdk_synth_dir()  # npm ci + tsc done
    env = offline_env(DRIFTLOOP_SKIP_BUNDLING="1", CDK_DISABLE_VERSION_CHECK="true")
    p = run([CDK / "node_modules" / ".bin" / "cdk", "synth", "--quiet", "--no-notices", "-o", tmp_path / "out"],
            cwd=CDK, env=env, timeout=300)
    assert p.returncode == 0, explain(p)
    cli = json.loads((tmp_path / "out" / "driftloop.template.json").read_text())
    strip = lambda t: json.dumps({k: {**r, "Metadata": None} for k, r in t["Resources"].items()}, sort_keys=True)  # noqa: E731
    assert strip(cli) == strip(cdk_template()), "the CLI synthesizes another template than the app"


def test_construct_props_are_generated_from_the_template_parameters():
    """lib/parameters.generated.ts (the construct's typed props) is current with template.yaml."""
    p = run([sys.executable, INFRA / "tools" / "cdk_params.py", "--check"])
    assert p.returncode == 0, "run python infra/tools/cdk_params.py --write\n" + explain(p)
    text = (CDK / "lib" / "parameters.generated.ts").read_text()
    for name, param in sam_template()["Parameters"].items():
        prop = name[0].lower() + name[1:]
        assert re.search(rf"readonly {prop}{'' if 'Default' not in param else '[?]'}: ", text), prop
    # A changed default is caught: the generator reads the template, not a copy.
    t = json.loads(json.dumps(sam_template()))
    t["Parameters"]["WindowMinutes"]["Default"] = 30
    assert cdk_params_render(t) != text


def test_construct_unit_tests_pass():
    """infra/cdk/test/*.test.ts: the construct's own tests (aws-cdk-lib/assertions, node --test)."""
    cdk_synth_dir()  # npm ci + tsc (compiles test/ too)
    tests = sorted(str(p) for p in (CDK / "dist" / "test").glob("*.test.js"))
    assert tests, "no compiled construct tests"
    p = run(["node", "--test", *tests], cwd=CDK, env=offline_env(DRIFTLOOP_SKIP_BUNDLING="1"), timeout=600)
    assert p.returncode == 0, explain(p)
    assert re.search(r"^# fail 0$", p.stdout, re.M) and not re.search(r"^# pass 0$", p.stdout, re.M), p.stdout[-3000:]
