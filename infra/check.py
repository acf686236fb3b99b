"""Checks infra/ without cloud access.

- Terraform: every .tf parses (python-hcl2). In each module, every `var.X` is a declared variable and every
  declared variable is used. Every `module` call passes only its module's variables and all of those that have no
  default. Every `local.X` is defined. `terraform fmt -check` runs where terraform is installed.
- cloud-init: the template, rendered as the modules render it, validates against cloud-init's schema
  (`cloud-init schema`).
- systemd: the unit passes `systemd-analyze verify` with no warning at all, and `systemd-analyze security` scores
  its exposure at most 2.5 ("OK").

    python3 infra/check.py            # exit 0 when every check holds, 1 otherwise
    python3 infra/check.py --self-test   # also shows each check failing on a broken copy

`scripts/test.sh` runs it with the venv `scripts/setup.sh` makes (python-hcl2) and `--self-test`.
"""

import base64
import json
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

import hcl2

INFRA = pathlib.Path(__file__).resolve().parent
UNIT = INFRA / "systemd" / "sigil-node.service"
TEMPLATE = INFRA / "cloud-init" / "sigil-node.yaml.tftpl"


def unquote(s):
    return s[1:-1] if isinstance(s, str) and len(s) >= 2 and s[0] == s[-1] == '"' else s


def module_dirs(root):
    return sorted({p.parent for p in root.rglob("*.tf") if ".terraform" not in p.parts})


def parse_dir(d):
    """Variables (name → has default), locals, module calls, and the text of every .tf in d."""
    variables, locals_, modules, text = {}, set(), [], ""
    for f in sorted(d.glob("*.tf")):
        src = f.read_text()
        text += src
        try:
            doc = hcl2.loads(src)
        except Exception as e:  # noqa: BLE001 - any parse error is the finding
            raise SystemExit(f"{f}: does not parse: {e}")
        for v in doc.get("variable", []):
            for name, body in v.items():
                variables[unquote(name)] = "default" in body
        for l in doc.get("locals", []):
            locals_.update(unquote(k) for k in l if not k.startswith("__"))
        for m in doc.get("module", []):
            for name, body in m.items():
                modules.append((unquote(name), body))
    return variables, locals_, modules, text


def check_terraform(root):
    errors = []
    for d in module_dirs(root):
        variables, locals_, modules, text = parse_dir(d)
        used = set(re.findall(r"\bvar\.([A-Za-z_][A-Za-z0-9_]*)", text))
        for v in sorted(used - variables.keys()):
            errors.append(f"{d.relative_to(root)}: var.{v} is used but not declared")
        for v in sorted(variables.keys() - used):
            errors.append(f"{d.relative_to(root)}: variable {v} is declared but never used")
        for l in sorted(set(re.findall(r"\blocal\.([A-Za-z_][A-Za-z0-9_]*)", text)) - locals_):
            errors.append(f"{d.relative_to(root)}: local.{l} is used but not defined")
        for name, body in modules:
            source = (d / unquote(body["source"])).resolve()
            if not source.is_dir():
                errors.append(f"{d.relative_to(root)}: module {name}: source {body['source']} is not a directory")
                continue
            theirs, _, _, _ = parse_dir(source)
            meta = ("source", "version", "providers", "for_each", "count", "depends_on", "__is_block__")
            passed = {k for k in body if k not in meta}
            for k in sorted(passed - theirs.keys()):
                errors.append(f"{d.relative_to(root)}: module {name} passes {k}, which {source.name} does not declare")
            for k in sorted(k for k, has_default in theirs.items() if not has_default and k not in passed):
                errors.append(f"{d.relative_to(root)}: module {name} does not pass {k}, which has no default")
    return errors


def render_cloud_init(template, unit):
    """The template as the modules render it (Terraform's templatefile), with example values."""
    values = {
        "node_name": "node-0",
        "pod": "eu",
        "jurisdiction": "EU",
        "cloud": "aws",
        "region": "eu-west-1",
        "tee_backend": "snp",
        "p2p_port": "27000",
        "api_port": "8443",
        "peers": '"/ip4/10.0.0.11/tcp/27000/p2p/12D3KooWExample"',
        "genesis_b64": base64.b64encode(b"\xa2genesis").decode(),
        "sigil_url": "https://example.com/sigil",
        "sigil_sha256": "0" * 64,
    }
    text = template.read_text()
    indented = ("\n" + " " * 6).join(unit.read_text().rstrip("\n").split("\n"))
    text = text.replace("${indent(6, unit)}", indented)
    missing = set()

    def sub(m):
        if m.group(1) not in values:
            missing.add(m.group(1))
            return m.group(0)
        return values[m.group(1)]

    text = re.sub(r"\$\{([a-z_0-9]+)\}", sub, text)
    leftover = re.findall(r"\$\{[^}]*\}", text)
    return text, sorted(missing) + leftover


def check_cloud_init(template, unit):
    text, unknown = render_cloud_init(template, unit)
    if unknown:
        return [f"{template.name}: template expressions the modules do not set: {unknown}"]
    if not shutil.which("cloud-init"):
        return ["cloud-init is not installed (scripts/setup.sh installs it)"]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    out = subprocess.run(["cloud-init", "schema", "--config-file", f.name], capture_output=True, text=True)
    pathlib.Path(f.name).unlink()
    said = out.stdout + out.stderr
    if out.returncode != 0 or not ("Valid cloud-config" in said or "Valid schema" in said):
        return [f"{template.name}: cloud-init schema: {(out.stdout + out.stderr).strip()}"]
    return []


def check_unit(unit):
    if not shutil.which("systemd-analyze"):
        return ["systemd-analyze is not installed"]
    with tempfile.TemporaryDirectory() as d:
        # verify wants the ExecStart binary to exist: point it at one that does.
        copy = pathlib.Path(d) / unit.name
        copy.write_text(unit.read_text().replace("/usr/local/bin/sigil", shutil.which("true") or "/bin/true"))
        out = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True)
        said = (out.stdout + out.stderr).strip()
        if out.returncode != 0 or said:
            return [f"{unit.name}: systemd-analyze verify: {said or out.returncode}"]
        sec = subprocess.run(
            ["systemd-analyze", "security", "--offline=yes", str(copy)], capture_output=True, text=True
        )
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", sec.stdout + sec.stderr)
        if not m:
            return [f"{unit.name}: systemd-analyze security gave no score: {sec.stdout[-300:]}{sec.stderr[-300:]}"]
        if float(m.group(1)) > 2.5:
            return [f"{unit.name}: exposure {m.group(1)} > 2.5 (systemd-analyze security)"]
        print(f"  systemd-analyze security: exposure {m.group(1)}")
    return []


def check_all(infra):
    errors = check_terraform(infra / "terraform")
    tf = shutil.which("terraform")
    if tf:
        out = subprocess.run([tf, "fmt", "-check", "-recursive", str(infra / "terraform")], capture_output=True, text=True)
        if out.returncode != 0:
            errors.append(f"terraform fmt -check: {out.stdout.strip()} {out.stderr.strip()}")
    errors += check_cloud_init(infra / "cloud-init" / TEMPLATE.name, infra / "systemd" / UNIT.name)
    errors += check_unit(infra / "systemd" / UNIT.name)
    return errors


def self_test():
    """Each check fails on a copy of infra/ broken in its way."""
    breaks = [
        ("terraform/modules/aws/main.tf", "var.instance_type", "var.instance_typo", "not declared"),
        ("terraform/examples/pod/main.tf", "  nodes         = [\"node-0\"]\n", "", "does not pass nodes"),
        ("terraform/examples/pod/main.tf", "  ami_id        = var.aws_ami_id", "  ami           = var.aws_ami_id", "passes ami"),
        ("cloud-init/sigil-node.yaml.tftpl", "encoding: b64", "encoding: base65", "cloud-init schema"),
        ("cloud-init/sigil-node.yaml.tftpl", "${node_name}", "${node_nme}", "do not set"),
        ("systemd/sigil-node.service", "Restart=on-failure", "Restart=sometimes", "verify"),
        ("systemd/sigil-node.service", "CapabilityBoundingSet=\n", "#\n", "exposure"),
    ]
    failures = 0
    for rel, old, new, want in breaks:
        with tempfile.TemporaryDirectory() as d:
            copy = pathlib.Path(d) / "infra"
            shutil.copytree(INFRA, copy, ignore=shutil.ignore_patterns(".terraform", "__pycache__", "local"))
            f = copy / rel
            src = f.read_text()
            assert old in src, (rel, old)
            f.write_text(src.replace(old, new, 1))
            errors = check_all(copy)
            caught = any(want in e for e in errors)
            print(f"  self-test: {rel}: {old.strip()!r} -> {new.strip()!r}: {'caught' if caught else 'MISSED'}"
                  + (f" ({errors[0][:100]})" if errors else ""))
            if not caught:
                failures += 1
    return failures


def main():
    errors = check_all(INFRA)
    for e in errors:
        print(f"FAIL {e}")
    if not errors:
        print("infra: terraform, cloud-init and systemd checks hold")
    failures = self_test() if "--self-test" in sys.argv else 0
    sys.exit(1 if errors or failures else 0)


if __name__ == "__main__":
    main()
