"""Flyte 2 SDK tasks, at module level."""

import flyte

env = flyte.TaskEnvironment(name="peers")


@env.task
async def double_task(x: int) -> int:
    return x * 2


@env.task
def main(n: int) -> list[int]:
    return list(flyte.map(double_task, list(range(n)), concurrency=64))
