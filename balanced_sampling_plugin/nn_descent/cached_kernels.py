"""pynndescent 0.7.0's dense NN-Descent, adapted so numba can keep it in its on-disk cache.

pynndescent compiles these functions in every new process (~30 s on 2 cores), because numba refuses to cache
them: the distance travels as an argument (a dispatcher value is a process-local address) and the thread count
is read with ``numba.get_num_threads()`` inside compiled code (a ctypes pointer); both make "dynamic globals".
Here the distance is the module global ``dist``, the thread count is an argument, every function is
``cache=True``, and only the batched-kernel branch is kept. The distance is pynndescent's ``squared_euclidean``
(its ``KERNEL_SQEUCLIDEAN``), which orders unit rows as cosine does, everywhere: its "cosine" (``alternative_dot``,
``-log2 <a, b>``) puts every pair with a non-positive product at the same infinite distance, so a patch unlike all
others (the most unique, after PCA centring) would get arbitrary graph neighbours.
Otherwise the code is pynndescent's, unchanged; it calls pynndescent's own (cached) helpers. Drop this module when
pynndescent's ``nn_descent`` caches itself. Measured in docs/benchmarks.md ("pynndescent kernels, disk-cached").

Adapted from pynndescent/pynndescent_.py (Leland McInnes), under its licence:

    BSD 2-Clause License

    Copyright (c) 2018, Leland McInnes
    All rights reserved.

    Redistribution and use in source and binary forms, with or without
    modification, are permitted provided that the following conditions are met:

    * Redistributions of source code must retain the above copyright notice, this
      list of conditions and the following disclaimer.

    * Redistributions in binary form must reproduce the above copyright notice,
      this list of conditions and the following disclaimer in the documentation
      and/or other materials provided with the distribution.

    THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
    AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
    IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
    DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE
    FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
    DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR
    SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER
    CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY,
    OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
    OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
"""

import numba
import numpy as np

import pynndescent.distances as pynnd_dist
from pynndescent.kernels import KERNEL_SQEUCLIDEAN, generate_graph_update_array_batched
from pynndescent.utils import (
    apply_graph_update_array,
    apply_sorted_graph_update_array,
    build_candidates_owner,
    checked_flagged_heap_push,
    deheap_sort,
    int32_bits_as_float32,
    make_heap,
    sort_updates_by_block,
    tau_rand_int,
)

#: The one distance these kernels compute, resolved at compile time: ``|a - b|^2``, i.e. ``2 - 2 <a, b>`` on unit rows.
dist = pynnd_dist.squared_euclidean


@numba.njit(parallel=True, cache=True, fastmath=True)
def generate_leaf_updates(
    updates, n_updates_per_thread, leaf_block, current_graph, data, n_threads
):
    """Generate leaf updates into pre-allocated arrays for parallel efficiency."""
    n_leaves = leaf_block.shape[0]
    leaves_per_thread = (n_leaves // n_threads) + 1
    heap_distances = current_graph[1]

    # Reset update counts
    for t in range(n_threads):
        n_updates_per_thread[t] = 0

    for t in numba.prange(n_threads):
        start_leaf = t * leaves_per_thread
        end_leaf = min(start_leaf + leaves_per_thread, n_leaves)
        max_updates = updates.shape[1]
        count = 0

        for leaf_idx in range(start_leaf, end_leaf):
            for i in range(leaf_block.shape[1]):
                p = leaf_block[leaf_idx, i]
                if p < 0:
                    break

                for j in range(i + 1, leaf_block.shape[1]):
                    q = leaf_block[leaf_idx, j]
                    if q < 0:
                        break

                    d = dist(data[p], data[q])
                    max_threshold = max(heap_distances[p, 0], heap_distances[q, 0])
                    if d < max_threshold:
                        if count < max_updates:
                            updates[t, count, 0] = int32_bits_as_float32(p)
                            updates[t, count, 1] = int32_bits_as_float32(q)
                            updates[t, count, 2] = d
                            count += 1

        n_updates_per_thread[t] = count

    return updates


@numba.njit(
    locals={"d": numba.float32, "p": numba.int32, "q": numba.int32},
    cache=True,
    parallel=True,
    fastmath=True,
)
def init_rp_tree(data, current_graph, leaf_array, n_threads):
    n_leaves = leaf_array.shape[0]
    block_size = n_threads * 64
    n_blocks = n_leaves // block_size

    max_leaf_size = leaf_array.shape[1]
    updates_per_thread = (
        int(block_size * max_leaf_size * (max_leaf_size - 1) / (2 * n_threads)) + 1
    )
    updates = np.zeros((n_threads, updates_per_thread, 3), dtype=np.float32)
    n_updates_per_thread = np.zeros(n_threads, dtype=np.int32)
    sorted_updates = np.empty((n_threads, 2 * updates_per_thread, 3), dtype=np.float32)
    block_offsets = np.zeros((n_threads, n_threads + 1), dtype=np.int64)

    n_vertices = current_graph[0].shape[0]

    for i in range(n_blocks + 1):
        block_start = i * block_size
        block_end = min(n_leaves, (i + 1) * block_size)

        leaf_block = leaf_array[block_start:block_end]

        generate_leaf_updates(
            updates,
            n_updates_per_thread,
            leaf_block,
            current_graph,
            data,
            n_threads,
        )

        sort_updates_by_block(
            updates, n_updates_per_thread, sorted_updates, block_offsets, n_vertices, n_threads
        )
        apply_sorted_graph_update_array(
            current_graph, sorted_updates, block_offsets, n_threads
        )


@numba.njit(
    fastmath=True,
    locals={"d": numba.float32, "idx": numba.int32, "i": numba.int32},
    cache=True,
)
def init_random(n_neighbors, data, heap, rng_state):
    for i in range(data.shape[0]):
        if heap[0][i, 0] < 0.0:
            for j in range(n_neighbors - np.sum(heap[0][i] >= 0.0)):
                idx = np.abs(tau_rand_int(rng_state)) % data.shape[0]
                if data.shape[0] > 1:
                    while idx == i:
                        idx = np.abs(tau_rand_int(rng_state)) % data.shape[0]
                d = dist(data[idx], data[i])
                checked_flagged_heap_push(
                    heap[1][i], heap[0][i], heap[2][i], d, idx, np.uint8(1)
                )

    return


@numba.njit(cache=True)
def process_candidates(
    data,
    current_graph,
    new_candidate_neighbors,
    old_candidate_neighbors,
    n_blocks,
    block_size,
    n_threads,
    update_array,
    n_updates_per_thread,
    sorted_updates,
    block_offsets,
    kernel=0,
):
    """Process candidate neighbors using array-based update generation.

    This is more efficient than the list-based approach because:
    1. No dynamic memory allocation during parallel loops
    2. Better cache locality with contiguous array storage
    3. Each thread writes to its own section of the array
    """
    c = 0
    n_vertices = new_candidate_neighbors.shape[0]
    for i in range(n_blocks + 1):
        block_start = i * block_size
        block_end = min(n_vertices, (i + 1) * block_size)

        new_candidate_block = new_candidate_neighbors[block_start:block_end]
        old_candidate_block = old_candidate_neighbors[block_start:block_end]

        if kernel != 0:
            generate_graph_update_array_batched(
                update_array,
                n_updates_per_thread,
                new_candidate_block,
                old_candidate_block,
                current_graph,
                data,
                kernel,
                n_threads,
            )
        if n_threads > 1:
            # Bucket updates by destination block so each thread only reads the
            # updates it will apply, instead of scanning every thread's updates.
            sort_updates_by_block(
                update_array,
                n_updates_per_thread,
                sorted_updates,
                block_offsets,
                n_vertices,
                n_threads,
            )
            c += apply_sorted_graph_update_array(
                current_graph, sorted_updates, block_offsets, n_threads
            )
        else:
            c += apply_graph_update_array(
                current_graph, update_array, n_updates_per_thread, n_threads
            )

    return c


@numba.njit(cache=True)
def nn_descent_internal(
    current_graph,
    data,
    n_neighbors,
    rng_state,
    max_candidates=50,
    n_iters=10,
    delta=0.001,
    verbose=False,
    kernel=0,
    n_threads=1,
):
    n_vertices = data.shape[0]
    block_size = 16384
    n_blocks = n_vertices // block_size

    # Pre-allocate update arrays for efficiency
    # Estimate max updates: each candidate pair can generate one update
    max_updates_per_thread = (
        int(
            (max_candidates**2 + max_candidates * (max_candidates - 1) / 2)
            * block_size
            / n_threads
        )
        + 1024
    )
    update_array = np.empty((n_threads, max_updates_per_thread, 3), dtype=np.float32)
    n_updates_per_thread = np.zeros(n_threads, dtype=np.int32)
    # Each update is written to at most two destination blocks.
    if n_threads > 1:
        sorted_updates = np.empty(
            (n_threads, 2 * max_updates_per_thread, 3), dtype=np.float32
        )
    else:
        sorted_updates = np.empty((1, 1, 3), dtype=np.float32)
    block_offsets = np.zeros((n_threads, n_threads + 1), dtype=np.int64)

    # Candidate workspace, reused across iterations; build_candidates_owner only
    # resets the rows it wrote on the previous iteration.
    new_candidate_indices = np.full((n_vertices, max_candidates), -1, dtype=np.int32)
    new_candidate_priority = np.full(
        (n_vertices, max_candidates), np.inf, dtype=np.float32
    )
    old_candidate_indices = np.full((n_vertices, max_candidates), -1, dtype=np.int32)
    old_candidate_priority = np.full(
        (n_vertices, max_candidates), np.inf, dtype=np.float32
    )
    active = np.ones(n_vertices, dtype=np.uint8)
    # Cross-block reverse edges, bucketed by owning thread (at most one per edge).
    reverse_dst = np.empty(n_vertices * n_neighbors, dtype=np.int32)
    reverse_src = np.empty(n_vertices * n_neighbors, dtype=np.int32)
    bucket_bounds = np.zeros((n_threads, n_threads + 1), dtype=np.int64)

    for n in range(n_iters):
        if verbose:
            print("\t", n + 1, " / ", n_iters)

        new_candidate_neighbors, old_candidate_neighbors = build_candidates_owner(
            current_graph,
            max_candidates,
            rng_state,
            n_threads,
            new_candidate_indices,
            new_candidate_priority,
            old_candidate_indices,
            old_candidate_priority,
            active,
            reverse_dst,
            reverse_src,
            bucket_bounds,
        )

        c = process_candidates(
            data,
            current_graph,
            new_candidate_neighbors,
            old_candidate_neighbors,
            n_blocks,
            block_size,
            n_threads,
            update_array,
            n_updates_per_thread,
            sorted_updates,
            block_offsets,
            kernel,
        )

        if c <= delta * n_neighbors * data.shape[0]:
            if verbose:
                print("\tStopping threshold met -- exiting after", n + 1, "iterations")
            return


@numba.njit(cache=True, nogil=True)
def nn_descent(data, leaf_array, n_neighbors, max_candidates, n_iters, delta, rng_state, n_threads):
    """(indices, distances) of the ``n_neighbors`` nearest rows of each unit row of ``data`` (n, d) float32.

    ``leaf_array`` (leaves, leaf_size) int32: row ids per random-projection leaf (-1 padded), the start graph;
    ``rng_state`` (3,) int64; ``n_threads`` <= numba's thread count. Both outputs (n, n_neighbors), nearest first,
    distances squared euclidean (``2 - 2 cos`` on unit rows). Releases the GIL.
    """
    current_graph = make_heap(data.shape[0], n_neighbors)
    init_rp_tree(data, current_graph, leaf_array, n_threads)
    init_random(n_neighbors, data, current_graph, rng_state)
    nn_descent_internal(
        current_graph, data, n_neighbors, rng_state, max_candidates, n_iters, delta, False, KERNEL_SQEUCLIDEAN,
        n_threads,
    )
    return deheap_sort(current_graph[0], current_graph[1])
