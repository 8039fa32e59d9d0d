"""Queues argv[1] jobs of `t` at once (bench/peers/queues.sh)."""
import sys

from pq_tasks import app, t

with app.open():
    t.batch_defer(*([{}] * int(sys.argv[1])))
