"""The training loop shared by the detectors' small heads: minibatch AdamW, keep the best dev epoch."""

from __future__ import annotations

from typing import Any


def fit_best_on_dev(net: Any, loss_fn: Any, opt: Any, train: tuple[Any, Any], dev: tuple[Any, Any], *,
                    epochs: int, batch_size: int, progress: bool = False) -> float:
    """Train ``net`` in place for ``epochs`` and restore the weights of the epoch with the lowest dev loss."""
    import torch

    (xt, yt), (xd, yd) = train, dev
    best, best_state = float("inf"), {k: v.clone() for k, v in net.state_dict().items()}
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(len(xt))
        for start in range(0, len(xt), batch_size):
            idx = perm[start : start + batch_size]
            opt.zero_grad()
            loss_fn(net(xt[idx]), yt[idx]).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            dev_loss = float(loss_fn(net(xd), yd))
        if dev_loss < best:
            best, best_state = dev_loss, {k: v.clone() for k, v in net.state_dict().items()}
        if progress:
            print(f"  epoch {epoch + 1}/{epochs}: dev loss {dev_loss:.4f}")
    net.load_state_dict(best_state)
    return best
