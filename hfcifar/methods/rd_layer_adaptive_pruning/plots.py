"""RD's figures: the per-layer distortion curves and the additivity check, drawn on a Matplotlib axis the caller owns
(`ctx.figure(...)` in a claim check, or `matplotlib.figure.Figure().subplots()`): no pyplot, no global backend."""

from __future__ import annotations

from .rd import AdditivityCheck, DistortionCurves, RDAllocation


def plot_distortion_curves(curves: DistortionCurves, ax, allocations: dict[str, RDAllocation] | None = None) -> None:
    """δ_i(φ) of every layer (log scale) on the Matplotlib axis `ax`, with the amounts each allocation chose marked."""
    markers = "ovs^Dp"
    for i, name in enumerate(curves.layers):
        amounts = curves.counts[i].numpy() / curves.num_weights[i]
        values = curves.distortion[i].numpy()
        line, = ax.plot(amounts[values > 0], values[values > 0], "-", linewidth=1.3, label=f"{name} ({curves.num_weights[i]:,})")
        for k, (label, allocation) in enumerate((allocations or {}).items()):
            value = curves.single_layer_distortion(name, allocation.zeros[name])
            if value > 0:
                ax.plot(allocation.sparsities[name], value, markers[k % len(markers)], color=line.get_color(), markersize=6,
                        markeredgecolor="black", markeredgewidth=0.6)
    for k, label in enumerate(allocations or {}):
        ax.plot([], [], markers[k % len(markers)], color="gray", markeredgecolor="black", label=f"RD choice, {label}")
    ax.set_yscale("log")
    ax.set(xlabel="pruning amount φ of the layer alone", ylabel="output distortion δ_i(φ) (MSE of logits)",
           title=f"Per-layer output-distortion curves ({curves.num_images} calibration images)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper left")


def plot_additivity(check: AdditivityCheck, ax, saturation: float | None = None) -> None:
    """Measured joint distortion against the sum of single-layer distortions (log-log) on the axis `ax`, with y = x.

    Args:
        saturation: the distortion of a network that outputs its mean logits for every image (e.g.
            `network_outputs(model, images).var(0, unbiased=False).mean()`): far above it the network has stopped
            following its input, and no sum of distortions can describe it.
    """
    labels = check.labels or [""] * len(check.joint)
    random = [(s, j) for s, j, l in zip(check.summed, check.joint, labels) if not l]
    if random:
        ax.scatter(*zip(*random), s=18, alpha=0.7, label="random layer-wise amounts")
    for s, j, label in zip(check.summed, check.joint, labels):
        if label:
            ax.scatter([s], [j], s=60, marker="*", edgecolor="black", linewidth=0.5, zorder=3, label=label)
    values = [v for v in (*check.joint, *check.summed) if v > 0]
    if values:
        low, high = min(values) / 1.5, max(values) * 1.5
        ax.plot([low, high], [low, high], "k--", linewidth=1, label="y = x (exact additivity)")
        if saturation is not None:
            ax.axhline(saturation, color="tab:orange", linestyle=":", linewidth=1.2, label="constant output (mean logits)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        from matplotlib.ticker import FormatStrFormatter, LogLocator

        for axis in (ax.xaxis, ax.yaxis):  # ticks at 1, 2, 5 × 10^k: the default minor labels collide
            axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(FormatStrFormatter("%.2g"))
            axis.set_minor_formatter(FormatStrFormatter(""))
    ax.set(xlabel="Σ single-layer distortions Σ δ_i(φ_i)", ylabel="measured distortion, all layers pruned",
           title=f"Additivity: Pearson r = {check.pearson:.3f} (log-log r = {check.log_pearson:.3f}),\n"
                 f"median measured / summed = {check.median_ratio:.2f}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
