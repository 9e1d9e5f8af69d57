"""``python -m generator``: the maintainer's commands (see ``make help``).

generate         render svarut/generated/ from the locked specs
check            regenerate into a temp dir and diff against svarut/generated/
update-specs     lock a new upstream commit and print what changed
check-upstream   compare the published specs with the lock (exit 1 if they differ)
"""

from __future__ import annotations

import argparse
import difflib
import sys
import tempfile
from pathlib import Path

from generator import changelog, report, specs
from generator.bindings import verify_bindings
from generator.ir import Api
from generator.normalize import SpecError, build_api
from generator.render import render
from generator.status_binding import status_binding_warnings, verify_status_binding

GENERATED = specs.ROOT / "svarut" / "generated"


def generate(out: Path, specs_dir: str | None, lock_path: Path = specs.LOCK_PATH) -> list[str]:
    """Render the package into ``out``; returns the hand-written bindings to the
    spec that no longer hold (``make generate`` warns, ``make check-generated`` fails)."""
    lock = specs.read_lock(lock_path)
    api = build_api(specs.parse(specs.load_locked(specs_dir, lock=lock)))
    render(api, lock, out)
    return binding_problems(api)


def binding_problems(api: Api) -> list[str]:
    """Hand-written knowledge that names the spec (the pre-send rules, the
    meaning of statuses) and no longer matches it."""
    for warning in status_binding_warnings(api):
        print(f"warning: {warning}", file=sys.stderr)
    return [*verify_bindings(api), *verify_status_binding(api)]


def _report_bindings(problems: list[str], *, fatal: bool) -> None:
    if not problems:
        return
    label = "error" if fatal else "warning"
    print(
        f"{label}: {len(problems)} binding(s) to the spec no longer hold:",
        file=sys.stderr,
    )
    for line in problems:
        print(f"  {line}", file=sys.stderr)
    print(
        "Update the declared bindings to the new spec: svarut/runtime/validation.py BINDINGS (pre-send rules), "
        "svarut/statuses.py (statuses).",
        file=sys.stderr,
    )


def check(specs_dir: str | None, lock_path: Path = specs.LOCK_PATH) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        problems = generate(fresh, specs_dir, lock_path)
        names = sorted({p.name for p in fresh.iterdir()} | {p.name for p in GENERATED.glob("*.py")})
        drift: list[str] = []
        for name in names:
            new = (fresh / name).read_text().splitlines(keepends=True) if (fresh / name).exists() else []
            old = (GENERATED / name).read_text().splitlines(keepends=True) if (GENERATED / name).exists() else []
            drift += difflib.unified_diff(old, new, f"svarut/generated/{name}", f"regenerated/{name}")
    _report_bindings(problems, fatal=True)
    if drift:
        sys.stdout.writelines(drift)
        print("\nsvarut/generated/ is not what the generator makes from the locked specs; run `make generate`.")
        return 1
    if problems:
        return 1
    print("svarut/generated/ matches the locked specs")
    return 0


def update_specs(
    commit: str,
    from_dir: str | None,
    specs_dir: str | None,
    lock_path: Path = specs.LOCK_PATH,
    *,
    files: list[str] | None = None,
    changelog_path: Path = changelog.CHANGELOG_PATH,
) -> int:
    """Lock ``commit``: the spec files in ``from_dir``, or the locked ones plus
    ``files`` downloaded at that commit (a 404 means the file was removed)."""
    lock = specs.read_lock(lock_path)
    old = specs.parse(specs.load_locked(specs_dir, lock=lock))
    if from_dir:
        new_raw = specs.spec_files_in(Path(from_dir))
        if files:
            missing = sorted(set(files) - set(new_raw))
            if missing:
                raise specs.LockError(f"{', '.join(missing)} (given with --file) is not a spec in {from_dir}")
    else:
        new_raw = specs.download_at(lock, commit, files)
    new = specs.parse(new_raw)
    build_api(new)  # fail before locking a spec the generator cannot represent
    current = changelog.current_version()
    changes = report.diff(old, new)
    print(report.render(changes))
    specs.write_lock(specs.relock(lock, new_raw, commit), lock_path)
    version = changelog.write_entry(changelog_path, commit=commit, changes=changes, current=current)
    print(f"\nspecs/lock.json now pins {commit}; run `make generate` and review the diff.")
    print(f"{changelog_path.name}: added 'Spec update to {commit[:7]}' under Unreleased (recommends {version}).")
    return 0


def check_upstream(published_base: str | None, specs_dir: str | None, lock_path: Path = specs.LOCK_PATH) -> int:
    lock = specs.read_lock(lock_path)
    published = specs.fetch_published(lock, published_base)
    changed = [e.file for e in lock if specs.sha256(published[e.file]) != e.sha256]
    if not changed:
        print("published specs match specs/lock.json")
        return 0
    old = specs.parse(specs.load_locked(specs_dir, lock=lock))
    print(f"published specs differ from specs/lock.json: {', '.join(changed)}")
    print(report.render(report.diff(old, specs.parse(published))))
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m generator", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--specs-dir", help="read the locked spec JSON from this directory (or SVARUT_SPECS_DIR)")
    parser.add_argument("--lock", type=Path, default=specs.LOCK_PATH, help="the lock file (default: specs/lock.json)")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate")
    gen.add_argument("--out", type=Path, default=GENERATED)
    sub.add_parser("check")
    upd = sub.add_parser("update-specs")
    upd.add_argument("--commit", required=True, help="the upstream commit to lock")
    upd.add_argument(
        "--from-dir", help="lock the OpenAPI *.json files in this directory instead of downloading them at --commit"
    )
    upd.add_argument(
        "--file",
        action="append",
        default=[],
        help="a spec file to add to the lock (repeatable); downloaded at --commit next to the locked ones",
    )
    upd.add_argument(
        "--changelog",
        type=Path,
        default=changelog.CHANGELOG_PATH,
        help="where to add the Unreleased entry (default: CHANGELOG.md)",
    )
    up = sub.add_parser("check-upstream")
    up.add_argument("--published-base", help="base URL to fetch the published specs from (default: the lock's)")
    args = parser.parse_args(argv)
    try:
        if args.command == "generate":
            _report_bindings(generate(args.out, args.specs_dir, args.lock), fatal=False)
            return 0
        if args.command == "check":
            return check(args.specs_dir, args.lock)
        if args.command == "update-specs":
            return update_specs(
                args.commit,
                args.from_dir,
                args.specs_dir,
                args.lock,
                files=args.file,
                changelog_path=args.changelog,
            )
        return check_upstream(args.published_base, args.specs_dir, args.lock)
    except (specs.LockError, SpecError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
