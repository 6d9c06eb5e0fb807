"""Torch in processes forked after it ran: ``nlp.pipe(texts, n_process=2)`` on Linux.

spaCy's multiprocessing ``pipe`` forks its workers (the default start method on Linux). Once
PyTorch has run an operation on several threads, its OpenMP thread pool does not survive a
fork: the first parallel operation in the child waits forever for threads that were not
copied (spaCy issue #4667, PyTorch's documented fork caveat). A transformer pipeline that
had processed one batch in the parent therefore hung in every worker.

The hybridnlp code that runs torch (the encoder's forward, the local language model) calls
:func:`torch_ran`; a process forked after that sets torch to one thread before it runs
anything, as PyTorch's own ``DataLoader`` does in its workers. One thread per worker is also
what ``n_process`` asks for: the workers, not their threads, share the cores. A process that
forks before any hybridnlp torch work keeps torch's own setting.
"""

import os

_torch_ran = False  # whether hybridnlp has run torch in this process (or the one it forked from)


def torch_ran() -> None:
    """Note that this process has run torch (cheap: called once per batch)."""
    global _torch_ran
    _torch_ran = True


def _after_fork_in_child() -> None:
    if _torch_ran:
        import torch

        torch.set_num_threads(1)


os.register_at_fork(after_in_child=_after_fork_in_child)
