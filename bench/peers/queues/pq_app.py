"""A procrastinate app for bench/peers/queues.sh: a no-op task `t`."""
import os
import sys

from procrastinate import App, PsycopgConnector

app = App(connector=PsycopgConnector(conninfo=os.environ["PQ_URL"]))


@app.task(name="t")
def t():
    pass


if __name__ == "__main__":
    # Queue argv[1] jobs at once.
    with app.open():
        t.batch_defer(*([{}] * int(sys.argv[1])))
