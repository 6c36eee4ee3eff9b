"""The forward counter on the real embedded chat model: positions, padding, and LoRA copies counting into it."""

import copy

import torch

from detectors.throughput import count_forwards, forward_flops_per_position, stage_throughput


def test_counts_positions_and_padding_and_copies_share_the_counter(chat_model):
    model = copy.deepcopy(chat_model.model)  # the session's model stays without a hook
    count = count_forwards(model)
    assert count_forwards(model) is count  # attached once
    ids = torch.tensor([[1, 2, 3, 4, 5], [0, 0, 0, 6, 7]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [0, 0, 0, 1, 1]])
    with torch.inference_mode():
        model(input_ids=ids, attention_mask=mask)
    assert (count.positions, count.padded, count.calls) == (10, 3, 1)
    before = count.snapshot()
    twin = copy.deepcopy(model)  # how the reproduction makes its LoRA copies
    with torch.inference_mode():
        twin(input_ids=ids[:1])
    assert count.since(before).positions == 5 and count.since(before).padded == 0
    flops = forward_flops_per_position(model)
    assert 1.5e8 < flops < 3e8  # 2 x ~106M body weights of SmolLM2-135M, embeddings excluded
    t = stage_throughput(count, 2.0, flops, peak_gflops=100.0)
    assert t["positions"] == 15 and t["padded_share"] == 0.2 and t["positions_per_s"] == 7.5
    assert t["fraction_of_peak"] == round(15 * flops / 2.0 / 1e9 / 100.0, 3)
