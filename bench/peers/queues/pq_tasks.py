"""A procrastinate app for bench/peers/queues.sh: a no-op task `t`."""
import os

from procrastinate import App, PsycopgConnector

app = App(connector=PsycopgConnector(conninfo=os.environ["PQ_URL"]))


@app.task(name="t")
def t():
    pass
