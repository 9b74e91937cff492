"""CLI for tagging: `monitor retag`, `monitor tags explain ITEM_ID`, `monitor tags eval FILE.jsonl`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from monitor.errors import MonitorError


class LabelledFileError(MonitorError):
    """A labelled evaluation file that cannot be read; names the file and line."""


def read_labelled(path: Path) -> list[dict]:
    """Lines of {"title", "lede", "lang", "relevant", "regions", "topics"}; blank lines skipped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelledFileError(f"The labelled file {path} cannot be read ({exc}).") from None
    examples = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            example = json.loads(line)
        except ValueError as exc:
            raise LabelledFileError(f"{path}, line {number}: not valid JSON ({exc.msg}).") from None
        if not isinstance(example, dict) or not isinstance(example.get("title", ""), str):
            raise LabelledFileError(f"{path}, line {number}: expected an object with a \"title\".")
        for key in ("regions", "topics"):
            if not isinstance(example.get(key, []), list):
                raise LabelledFileError(f"{path}, line {number}: \"{key}\" must be a list of slugs.")
        examples.append(example)
    if not examples:
        raise LabelledFileError(f"The labelled file {path} has no items.")
    return examples


def format_report(report: dict) -> str:
    intervals = report.get("intervals")

    def interval(name: str) -> str:
        if not intervals:
            return ""
        lo, hi = intervals[name]
        return f"   ({intervals['level']:.0%} interval {lo:.3f}-{hi:.3f})"

    accuracy = f"{report['relevance_accuracy']:.3f}{interval('relevance_accuracy')}"
    out = [f"{report['n']} labelled items", f"relevance accuracy  {accuracy}", ""]
    for key in ("regions", "topics"):
        out.append(f"{key:<26} {'P':>6} {'R':>6} {'F1':>6} {'tp':>4} {'fp':>4} {'fn':>4}")
        for slug, f in report[key]["per_tag"].items():
            out.append(f"  {slug:<24} {f['precision']:6.3f} {f['recall']:6.3f} {f['f1']:6.3f} "
                       f"{f['tp']:4d} {f['fp']:4d} {f['fn']:4d}")
        m = report[key]["micro"]
        out.append(f"  {'micro-average':<24} {m['precision']:6.3f} {m['recall']:6.3f} {m['f1']:6.3f} "
                   f"{m['tp']:4d} {m['fp']:4d} {m['fn']:4d}{interval(key + '_f1')}")
        out.append("")
    if intervals:
        out.append(f"intervals: percentile bootstrap, {intervals['rounds']} resamples of the items "
                   "(fixed seed); reports of one story counted as independent items")
    return "\n".join(out)


def register(cli: click.Group) -> None:
    from monitor.cli import AppContext, pass_app

    @cli.command("retag")
    @click.option("--redetect-language", is_flag=True,
                  help="Also detect each item's language again (slower).")
    @pass_app
    def retag(app: AppContext, redetect_language: bool) -> None:
        """Re-tag the whole archive after the taxonomy changed, and rebuild story clusters."""
        from monitor.tagging import retag_all

        show = sys.stderr.isatty()

        def progress(done: int, total: int) -> None:
            if show:
                click.echo(f"\rtagged {done}/{total}", nl=False, err=True)

        stats = retag_all(app.db, app.config, progress=progress, redetect_language=redetect_language)
        if show:
            click.echo("", err=True)
        click.echo(f"Re-tagged {stats.items} items in {stats.seconds:.1f}s: {stats.relevant} relevant, "
                   f"{stats.tags} tags, {stats.clusters} story clusters "
                   f"({stats.multi_item_clusters} with more than one item).")

    @cli.group("tags")
    def tags() -> None:
        """Explain and measure region/topic tagging."""

    @tags.command("explain")
    @click.argument("item_id", type=int)
    @click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
    @pass_app
    def explain_cmd(app: AppContext, item_id: int, as_json: bool) -> None:
        """Show why an item has its tags: each tag with its score and the matched terms."""
        from monitor.tagging import explain

        data = explain(app.db, app.config, item_id)
        if data is None:
            raise click.ClickException(f"There is no item {item_id} in the archive.")
        if as_json:
            click.echo(json.dumps(data, ensure_ascii=False, indent=2))
            return
        click.echo(f"Item {data['id']}: {data['title']}")
        click.echo(f"  source {data['source']}, language {data['language'] or '?'}"
                   f" (declared {data['declared_language'] or '?'})")
        rel = data["relevance"]
        verdict = {True: "relevant", False: "not relevant", None: "not tagged yet"}[data["relevant"]]
        click.echo(f"  {verdict} (score {rel['score']:g}, threshold {rel['threshold']})")
        for ev in rel["evidence"]:
            click.echo(f"      {_evidence(ev)}")
        if not data["tags"]:
            click.echo("  no region or topic tags")
        for tag in data["tags"]:
            click.echo(f"  {tag['kind']} {tag['tag']} ({tag['label']}): score {tag['score']:g}")
            for ev in tag["evidence"]:
                click.echo(f"      {_evidence(ev)}")
        for s in data["suppressed"]:
            why = s.get("reason") or "vetoed by " + ", ".join(f"'{v['term']}'" for v in s["vetoed_by"])
            click.echo(f"  not given: {s['kind']} {s['tag']} (score {s['score']:g}): {why}")
        for i, r in enumerate(data["reviews"]):
            answer = ("relevant; regions " + (", ".join(r["regions"]) or "none") + "; topics "
                      + (", ".join(r["topics"]) or "none")) if r["relevant"] else "not relevant"
            state = "applies" if i == 0 else "replaced"
            note = f" ({r['note']})" if r["note"] else ""
            click.echo(f"  reviewed by {r['reviewer']} at {r['reviewed_at']} ({state}): "
                       f"{answer}{note}")
        if data["stale"]:
            click.echo("  (the stored tags differ from the current taxonomy: run `monitor retag`)")
        cluster = data["cluster"]
        if cluster:
            click.echo(f"  story cluster {cluster['id']}: {cluster['size']} item(s), "
                       f"representative item {cluster['representative_id']}")
            for member in cluster["members"]:
                if member["id"] != data["id"]:
                    click.echo(f"      also: item {member['id']} [{member['source']}, "
                               f"{member['language'] or '?'}] {member['title']}")

    @tags.command("review")
    @click.argument("item_id", type=int)
    @click.option("--relevant/--not-relevant", required=True,
                  help="Whether the item is about migration, asylum or refugees.")
    @click.option("--region", "regions", multiple=True, metavar="SLUG",
                  help="A region of the item (repeat for several; a parent is implied).")
    @click.option("--topic", "topics", multiple=True, metavar="SLUG",
                  help="A topic of the item (repeat for several).")
    @click.option("--by", "reviewer", required=True, help="Who reviewed it (name or account).")
    @click.option("--note", default=None, help="Why, for the record.")
    @pass_app
    def review_cmd(app: AppContext, item_id: int, relevant: bool, regions: tuple[str, ...],
                   topics: tuple[str, ...], reviewer: str, note: str | None) -> None:
        """Set an item's relevance, regions and topics by hand; later tagging keeps them."""
        from monitor.tag_reviews import record

        review = record(app.db, app.config, item_id, relevant=relevant, regions=regions,
                        topics=topics, reviewer=reviewer, note=note)
        answer = (f"relevant, regions: {', '.join(review.regions) or 'none'}, topics: "
                  f"{', '.join(review.topics) or 'none'}") if review.relevant else "not relevant"
        click.echo(f"Item {item_id} reviewed by {review.reviewer}: {answer}. Its tags are "
                   "stored; later ingests and `monitor retag` keep them.")

    @tags.command("reviewed")
    @pass_app
    def reviewed_cmd(app: AppContext) -> None:
        """Print every reviewed item as a labelled JSON line, for `monitor tags eval`."""
        from monitor.tag_reviews import reviewed_examples

        for example in reviewed_examples(app.db, app.config):
            click.echo(json.dumps(example, ensure_ascii=False))

    @tags.command("lint")
    @click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
    @pass_app
    def lint_cmd(app: AppContext, files: tuple[Path, ...]) -> None:
        """Terms listed twice, and (given labelled FILES) wildcards reaching list-less languages."""
        from monitor.taxonomy_lint import foreign_wildcard_matches, repeated_terms

        repeated = repeated_terms(app.config.taxonomy)
        examples = [example for file in files for example in read_labelled(file)]
        wildcards = foreign_wildcard_matches(app.config.taxonomy, examples) if examples else []
        for finding in repeated + wildcards:
            click.echo(f"{finding.where}: {finding.message}")
        checked = f"; wildcards checked against {len(examples)} items" if examples else ""
        click.echo(f"{len(repeated)} repeated terms, {len(wildcards)} wildcards matching words "
                   f"of languages without lists{checked}.")
        if repeated:
            sys.exit(1)

    @tags.command("eval")
    @click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--errors", "show_errors", is_flag=True, help="Also list each item tagged wrongly.")
    @click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
    @click.option("--intervals", "rounds", type=click.IntRange(min=0), default=0,
                  metavar="ROUNDS", help="Also print 95% bootstrap intervals of the three headline "
                  "figures, from ROUNDS resamples of the items (1000 is enough).")
    @pass_app
    def eval_cmd(app: AppContext, file: Path, show_errors: bool, as_json: bool,
                 rounds: int) -> None:
        """Precision, recall and F1 per tag and micro-averaged, plus relevance accuracy."""
        from monitor.tag_eval import evaluate

        report = evaluate(app.config.taxonomy, read_labelled(file), rounds=rounds)
        if as_json:
            if not show_errors:
                report.pop("errors")
            click.echo(json.dumps(report, ensure_ascii=False, indent=2))
            return
        click.echo(format_report(report))
        if show_errors:
            for err in report["errors"]:
                click.echo(json.dumps(err, ensure_ascii=False))


def _evidence(ev: dict) -> str:
    if ev.get("field") == "implied":
        return f"implied by {ev.get('implied_by')}"
    if ev.get("field") == "source":
        return "default of the item's source"
    if ev.get("field") == "home":
        return f"the outlet's country ({ev['term']}): no rule placed the item elsewhere"
    if ev.get("field") == "review":
        return f"set by {ev.get('reviewer')}'s review of {str(ev.get('reviewed_at'))[:10]}"
    count = f" x{ev['count']}" if ev.get("count", 1) > 1 else ""
    lang = f" [{ev['lang']}]" if ev.get("lang") and ev.get("lang") != "any" else ""
    rule = f" ({ev['rule']})" if ev.get("rule") else ""
    return f"'{ev['term']}'{lang} in {ev['field']}{count}, weight {ev['weight']:g}{rule}"
