"""``python -m generator``: the maintainer's commands (see ``make help``).

generate         render svarut/generated/ from the locked specs (exit 1 while a
                 hand-written binding to the spec no longer holds)
check            regenerate into a temp dir and diff against svarut/generated/
update-specs     lock a new upstream commit and print what changed
check-upstream   compare the published specs' content with the lock (exit 1 if it differs)
"""

from __future__ import annotations

import argparse
import difflib
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from generator import changelog, refs, report, specs
from generator.check_rules import Predates, predated_bindings, verify_bindings
from generator.check_statuses import status_binding_warnings, verify_status_binding
from generator.check_utfall import utfall_binding_warnings, verify_utfall_binding
from generator.ir import Api, Operation
from generator.normalize import SpecError, build_api
from generator.render import render

GENERATED = specs.ROOT / "svarut" / "generated"


def generate(out: Path, specs_dir: str | None, lock_path: Path = specs.LOCK_PATH) -> list[str]:
    """Render the package into ``out``; returns the hand-written bindings to the
    spec that no longer hold (``make generate`` and ``make check-generated`` then fail)."""
    lock = specs.read_lock(lock_path)
    api = build_api(refs.load_bundled(specs_dir, lock_path=lock_path))
    predates = _predates(lock, specs.upstream_history(specs_dir))
    predated = predated_bindings(api, predates=predates)
    for operation_id, keys in predated.items():
        print(
            f"warning: {operation_id}: the spec is older than what pre-send rules read ({', '.join(keys)}): "
            "those checks have nothing to read in this client",
            file=sys.stderr,
        )
    api = replace(
        api, operations=tuple(replace(o, predated=tuple(predated.get(o.operation_id, ()))) for o in api.operations)
    )
    render(api, [*lock, *specs.read_references(lock_path)], out)
    return binding_problems(api, predates)


def _predates(lock: list[specs.LockedSpec], history: list[str]) -> Predates:
    """Whether an operation's spec, at its locked upstream commit, is older than
    a commit, as the upstream history at hand tells (never, without one)."""
    commits = {entry.file: entry.upstream_commit for entry in lock}

    def predates(operation: Operation, since: str) -> bool:
        return specs.predates(commits.get(operation.spec_file, ""), since, history)

    return predates


def binding_problems(api: Api, predates: Predates | None = None) -> list[str]:
    """Hand-written knowledge that names the spec (the pre-send rules, the
    meaning of statuses) and no longer matches it."""
    for warning in [*status_binding_warnings(api), *utfall_binding_warnings(api)]:
        print(f"warning: {warning}", file=sys.stderr)
    return [*verify_bindings(api, predates=predates), *verify_status_binding(api), *verify_utfall_binding(api)]


def _report_bindings(problems: list[str]) -> None:
    """A binding that no longer holds is an error everywhere: a pre-send rule
    that cannot read its field would otherwise stop applying without a word."""
    if not problems:
        return
    print(f"error: {len(problems)} binding(s) to the spec no longer hold:", file=sys.stderr)
    for line in problems:
        print(f"  {line}", file=sys.stderr)
    print(
        "Update the declared bindings to the new spec: svarut/runtime/validation.py BINDINGS (pre-send rules), "
        "svarut/statuses.py (statuses), svarut/utfall.py (the eksternRef lookup). "
        "Until then a client built from this output refuses the sends "
        "whose rules cannot read what they check.",
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
    _report_bindings(problems)
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
    ref_commits: dict[str, str] | None = None,
    changelog_path: Path = changelog.CHANGELOG_PATH,
) -> int:
    """Lock ``commit``: the spec files in ``from_dir``, or the locked ones plus
    ``files`` downloaded at that commit (a 404 means the file was removed),
    and every document they reference by URL (``ref_commits``: the upstream
    commit of such a document, by file name)."""
    lock = specs.read_lock(lock_path)
    old_references = specs.read_references(lock_path)
    old = refs.load_bundled(specs_dir, lock_path=lock_path)
    if from_dir:
        found = specs.spec_files_in(Path(from_dir))
        # A document the other specs reference (fiks-common.json) is locked as a reference, not generated from.
        referenced = {url.rsplit("/", 1)[-1] for url in refs.documents_of(specs.parse(found))}
        new_raw = {name: data for name, data in found.items() if name not in referenced}
        if files:
            missing = sorted(set(files) - set(new_raw))
            if missing:
                raise specs.LockError(f"{', '.join(missing)} (given with --file) is not a spec in {from_dir}")
    else:
        new_raw = specs.download_at(lock, commit, files)
    new = specs.parse(new_raw)
    documents, references = specs.lock_references(
        refs.documents_of(new),
        old_references,
        from_dir=Path(from_dir) if from_dir else None,
        specs_dir=specs_dir,
        commits=ref_commits or {},
    )
    bundled = refs.bundle(new, specs.parse(documents))
    api = build_api(bundled)  # fail before locking a spec the generator cannot represent
    new_lock = specs.relock(lock, new_raw, commit)
    current = changelog.current_version()
    changes = report.diff(old, bundled) + report.document_changes(
        {r.published_url: r.sha256 for r in old_references},
        {r.published_url: r.sha256 for r in references},
        refs.users(new),
    )
    print(report.render(changes))
    specs.write_lock(new_lock, lock_path, references=references)
    version = changelog.write_entry(changelog_path, commit=commit, changes=changes, current=current)
    print(f"\nspecs/lock.json now pins {commit}; run `make generate` and review the diff.")
    for entry in references:
        if not entry.upstream_commit:
            print(
                f"note: {entry.file} is locked by content only (retrieved {entry.retrieved}); "
                f"give its upstream commit with --ref-commit {entry.file}=<sha> to pin its download"
            )
    print(f"{changelog_path.name}: added 'Spec update to {commit[:7]}' under Unreleased (recommends {version}).")
    problems = binding_problems(api, _predates(new_lock, specs.upstream_history(from_dir, specs_dir)))
    _report_bindings(problems)
    return 1 if problems else 0


def check_upstream(published_base: str | None, specs_dir: str | None, lock_path: Path = specs.LOCK_PATH) -> int:
    """Compare what is published with the lock by content: the site re-serializes
    every document, so its bytes never equal upstream's even for the same content."""
    lock, references = specs.read_lock(lock_path), specs.read_references(lock_path)
    published = specs.fetch_published([*lock, *references], published_base)
    referenced = specs.load_references(specs_dir, references=references)
    locked = {**specs.load_locked(specs_dir, lock=lock), **{r.file: referenced[r.published_url] for r in references}}
    changed = [e.file for e in [*lock, *references] if not specs.same_content(published[e.file], locked[e.file])]
    if not changed:
        print("published specs match specs/lock.json (content)")
        return 0
    print(f"published specs differ in content from specs/lock.json: {', '.join(changed)}")
    for file in changed:
        print(f"  {file}: {specs.age_against_history(file, published[file], locked[file])}")
    old = refs.load_bundled(specs_dir, lock_path=lock_path)
    new_documents = {r.published_url: published[r.file] for r in references}
    new = refs.bundle(specs.parse({e.file: published[e.file] for e in lock}), specs.parse(new_documents))
    print()
    print(report.render(report.diff(old, new)))
    return 1


def _pairs(values: list[str]) -> dict[str, str]:
    pairs = {}
    for value in values:
        name, sep, commit = value.partition("=")
        if not sep or not name or not commit:
            raise specs.LockError(f"--ref-commit takes FILE=SHA, got {value!r}")
        pairs[name] = commit
    return pairs


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
        "--ref-commit",
        action="append",
        default=[],
        metavar="FILE=SHA",
        help="the upstream commit of a document the specs reference by URL (e.g. fiks-common.json=<sha>); repeatable",
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
            problems = generate(args.out, args.specs_dir, args.lock)
            _report_bindings(problems)
            return 1 if problems else 0
        if args.command == "check":
            return check(args.specs_dir, args.lock)
        if args.command == "update-specs":
            return update_specs(
                args.commit,
                args.from_dir,
                args.specs_dir,
                args.lock,
                files=args.file,
                ref_commits=_pairs(args.ref_commit),
                changelog_path=args.changelog,
            )
        return check_upstream(args.published_base, args.specs_dir, args.lock)
    except (specs.LockError, SpecError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
