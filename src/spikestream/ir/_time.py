"""The time-discretisation rule: the one place where continuous neuron parameters meet discrete steps.

NIR describes neurons by differential equations with parameters in seconds (``tau``). spikestream
runs them in discrete steps of ``dt`` seconds by forward Euler, exactly as the exporters of
snnTorch and SpikingJelly assume when they write NIR:

    LIF:      v[t] = v[t-1] + (dt / tau) * (v_leak - v[t-1] + r * I[t])
    CubaLIF:  i[t] = i[t-1] + (dt / tau_syn) * (-i[t-1] + w_in * I[t])
              v[t] = v[t-1] + (dt / tau_mem) * (v_leak - v[t-1] + r * i[t])
    IF:       v[t] = v[t-1] + r * I[t]

then spike ``s[t] = v[t] >= threshold`` and reset. So an snnTorch ``Leaky(beta)``, exported with
``tau = dt / (1 - beta)`` and ``r = tau / dt``, runs here as ``v = beta * v + I``.

``DEFAULT_DT`` is the step used when a file does not say otherwise; it equals the dt that snnTorch's
and SpikingJelly's NIR exporters use. ``load_nir(path, dt=...)`` overrides it, and the value travels
with the graph (``Graph.dt``) so that every kernel sees the same step.
"""

DEFAULT_DT = 1e-4  # seconds per time step


def decay_factor(tau, dt: float = DEFAULT_DT):
    """The forward-Euler gain dt/tau applied per step (array-friendly)."""
    return dt / tau
