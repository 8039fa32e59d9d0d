"""flytekit tasks must live at module level."""

from flytekit import map_task, task, workflow


@task
def double_task(x: int) -> int:
    return x * 2


@workflow
def wf(xs: list[int]) -> list[int]:
    return map_task(double_task, concurrency=64)(x=xs)
