"""Files per task: from work dirs, the lineage store and the RO-Crate, merged by path."""

from __future__ import annotations

from pathlib import Path

from lakeline_nextflow.lineage_store import LineageStore, LinOutput, parse_lid
from lakeline_nextflow.model import FileRef, Report, TaskPlan, WorkflowPlan, process_of
from lakeline_nextflow.paths import REMOTE, Locator
from lakeline_nextflow.rocrate import Crate, task_output
from lakeline_nextflow.values import split_workdir
from lakeline_nextflow.workdir import read_workdir

OUTPUT_STATUSES = ("completed",)  # a failed task's leftovers are not outputs


def merge_refs(existing: list[FileRef], new: list[FileRef]) -> None:
    """Add `new` refs to `existing`, filling checksums/sizes of the ones already there."""
    for ref in new:
        same = next(
            (
                e
                for e in existing
                if e.path == ref.path
                or (ref.producer and e.producer == ref.producer and e.relpath == ref.relpath)
            ),
            None,
        )
        if same is None:
            existing.append(ref)
            continue
        same.checksum = same.checksum or ref.checksum
        same.size = same.size if same.size is not None else ref.size
        same.role = same.role or ref.role


def _status_from_exit(task: TaskPlan, began: bool) -> None:
    if task.status:
        return
    if task.exit_code is not None:
        task.status = "completed" if task.exit_code == 0 else "errored"
    else:
        task.status = "started" if began else "scheduled"


def add_work_dirs(plan: WorkflowPlan, locator: Locator, report: Report) -> None:
    """Inputs (`nxf_stage`), outputs, log and exit code from each task's work dir."""
    absent = 0
    old_header = False
    for task in plan.tasks.values():
        path = locator.task_dir(task.hash) if task.hash else None
        if path is None or not path.is_dir():
            absent += 1
            _status_from_exit(task, began=False)
            continue
        problems: list[str] = []
        info = read_workdir(path, task.hash or "", problems)
        for problem in problems:
            report.warn(problem)
        report.source("workdir", str(path))
        task.sources.add("workdir")
        task.work_dir, task.log = str(path), None if info.log is None else str(info.log)
        if info.name and (task.name in (task.short, task.key) or not task.name):
            task.name, task.process = info.name, process_of(info.name)
        if task.exit_code is None:
            task.exit_code = info.exit_code
        _status_from_exit(task, info.began)
        if info.container:
            task.params.setdefault("container", info.container)
        if info.script and "script" not in task.params:
            task.params["script"] = info.script
        original = task.params.get("workdir") or str(path)
        inputs = [locator.ref(s.source, role=s.name, relative_to=original) for s in info.staged]
        merge_refs(task.inputs, inputs)
        if task.status in OUTPUT_STATUSES:
            merge_refs(
                task.outputs,
                [FileRef(str(path / rel), producer=task.hash, relpath=rel) for rel in info.outputs],
            )
        if info.declared is None and info.wrapper:
            old_header = True
        if info.unmatched:
            report.note(
                f"task {task.name} ({task.short}): declared outputs {', '.join(info.unmatched)} "
                "match nothing in its work dir"
            )
    if old_header:
        report.note(
            "work dirs from Nextflow < 24.04 do not declare outputs: outputs are each work dir's "
            "contents minus staged inputs and .command.* files (scratch files a script left count)"
        )
    named = sorted(w for m in plan.launches if (w := m.work_dir))  # a log says where it was
    say = report.warn if named else report.note
    if absent and plan.tasks and locator.work_root is None:
        where = f" (the log says {named[-1]})" if named else ""
        say(
            f"session {plan.key}: no work dir found{where}: the inputs and outputs of its "
            f"{len(plan.tasks)} tasks are known only from a lineage store or RO-Crate, if given"
        )
    elif absent and plan.tasks:
        say(
            f"session {plan.key}: {absent} of {len(plan.tasks)} tasks have no work dir under "
            f"{locator.work_root} (cleaned up?): their files are known only from other sources"
        )


def _task(plan: WorkflowPlan, digest: str, name: str | None, status: str, source: str) -> TaskPlan:
    task = plan.tasks.get(digest)
    if task is None:
        label = name or digest
        task = TaskPlan(
            key=digest,
            scoped=False,
            short=f"{digest[:2]}/{digest[2:8]}",
            hash=digest,
            process=process_of(label),
            name=label,
            status=status,
            params={"name": label},
        )
        plan.tasks[digest] = task
    task.status = task.status or status
    task.sources.add(source)
    return task


def _output_ref(
    plan: WorkflowPlan, locator: Locator, digest: str, relpath: str, root: str | None
) -> FileRef:
    producer = plan.tasks.get(digest)
    if producer is not None:
        found = next((o for o in producer.outputs if o.relpath == relpath), None)
        if found is not None:
            return found
    return locator.output(digest, relpath, root)


def add_lineage(plan: WorkflowPlan, store: LineageStore, locator: Locator, report: Report) -> None:
    """TaskRun inputs (with producer LIDs and checksums), FileOutputs, published copies."""
    mine = {h: t for h, t in store.tasks.items() if t.session in (None, plan.key)}
    split = [split_workdir(o.path) for o in store.outputs if o.task]
    root = min((parts[0] for parts in split if parts is not None), default=None)
    by_lid = {(o.task, o.key.partition("/")[2]): o for o in store.outputs if o.task}
    new = [h for h in mine if h not in plan.tasks]
    for digest, record in mine.items():
        task = _task(plan, digest, record.name, "completed", "lineage")
        for key, value in (("container", record.container), ("conda", record.conda)):
            if value:
                task.params.setdefault(key, value)
        if record.script:
            task.params.setdefault("script", record.script)
        refs = []
        for item in record.inputs:
            if item.producer is not None:
                known: LinOutput | None = by_lid.get((item.producer, item.relpath or ""))
                ref = (
                    FileRef(locator.local(known.path), known.path, item.producer, item.relpath)
                    if known is not None
                    else _output_ref(plan, locator, item.producer, item.relpath or "", root)
                )
                ref = FileRef(ref.path, ref.original, ref.producer, ref.relpath, item.name)
                if known is not None:
                    ref.checksum, ref.size = known.checksum, known.size
            else:
                ref = locator.ref(item.path or "", role=item.name)
                ref.checksum = item.checksum
            refs.append(ref)
        merge_refs(task.inputs, refs)
    if new:
        report.note(
            f"session {plan.key}: {len(new)} task(s) known only from the lineage store: recorded "
            "as completed (the store keeps no status or times)"
        )
    for output in store.outputs:
        if output.task in plan.tasks and plan.tasks[output.task].status in OUTPUT_STATUSES:
            relpath = output.key.partition("/")[2]
            ref = FileRef(locator.local(output.path), output.path, output.task, relpath)
            ref.checksum, ref.size = output.checksum, output.size
            merge_refs(plan.tasks[output.task].outputs, [ref])
        elif output.task is None and output.source and output.source.startswith("lid://"):
            producer, relpath = parse_lid(output.source)
            if producer not in plan.tasks or not relpath:
                continue
            source = _output_ref(plan, locator, producer, relpath, root)
            copy = FileRef(locator.local(output.path), output.path, checksum=output.checksum)
            copy.size = output.size
            _add_published(plan.tasks[producer], source, copy)
    for task in plan.tasks.values():
        sums = {r.relpath or r.path: r.checksum for r in task.outputs + task.inputs if r.checksum}
        if sums:
            task.params["checksums"] = sums


def _add_published(task: TaskPlan, source: FileRef, copy: FileRef) -> None:
    if all(existing.path != copy.path for _, existing in task.published):
        task.published.append((source, copy))


def add_crate(plan: WorkflowPlan, crate: Crate, locator: Locator, report: Report) -> None:
    """Task inputs/outputs and published copies from a Workflow Run RO-Crate."""
    crate_dir = crate.path.parent
    skipped_tmp = 0
    for digest, record in crate.tasks.items():
        status = "errored" if record.failed else "completed"
        task = _task(plan, digest, record.name, status, "rocrate")
        if record.process and (task.process == process_of(task.name) or not task.process):
            task.process = record.process
        if record.failed and record.error:
            task.error = task.error or str(record.error)
        refs = []
        for ident in record.inputs:
            produced = task_output(ident)
            if produced is not None:
                refs.append(_output_ref(plan, locator, produced[0], produced[1], None))
            elif ident.startswith("#tmp/"):
                skipped_tmp += 1
            elif ident.startswith("work/") and locator.work_root is not None:
                refs.append(locator.ref(str(locator.work_root / ident[len("work/") :])))
            elif ident.startswith("/") or ident.startswith(REMOTE):
                refs.append(locator.ref(ident))
            else:  # a params file nf-prov copied into the crate
                refs.append(locator.ref(str(crate_dir / ident)))
        merge_refs(task.inputs, refs)
        if task.status in OUTPUT_STATUSES:
            merge_refs(task.outputs, [locator.output(digest, rel) for rel in record.outputs])
    for digest, relpath, target in crate.published:
        if digest in plan.tasks:
            source = _output_ref(plan, locator, digest, relpath, None)
            _add_published(plan.tasks[digest], source, FileRef(str(crate_dir / target), target))
    if skipped_tmp:
        report.note(
            f"{crate.path}: {skipped_tmp} input(s) made by collectFile in work/tmp are named "
            "only by file name: not recorded"
        )


def consumed_outputs(plan: WorkflowPlan) -> None:
    """A file a task staged from another task's work dir is an output of that task, whether
    or not its work dir still lists it (cleaned, or not declared): the planned edge is then
    recorded (by reference when the bytes are gone)."""
    for task in plan.tasks.values():
        for ref in task.inputs:
            producer = plan.tasks.get(ref.producer or "")
            if producer is None or producer is task or not ref.relpath:
                continue
            if producer.status not in OUTPUT_STATUSES:
                continue
            inside = [
                o for o in producer.outputs if o.relpath and ref.relpath.startswith(o.relpath + "/")
            ]
            if not inside:  # a file inside a folder output is part of that folder's artifact
                made = FileRef(ref.path, ref.original, ref.producer, ref.relpath)
                made.checksum, made.size = ref.checksum, ref.size
                merge_refs(producer.outputs, [made])


def producer_edges(plans: list[WorkflowPlan]) -> list[tuple[str, str, str]]:
    """(consumer task, producer task hash, file) for every input another task produced."""
    edges = []
    for plan in plans:
        for task in plan.tasks.values():
            for ref in task.inputs:
                if ref.producer and ref.producer != task.key:
                    edges.append((task.key, ref.producer, ref.relpath or Path(ref.path).name))
    return sorted(set(edges))
