"""The time-discretisation rule: the one place where continuous neuron parameters meet discrete steps.

NIR describes neurons by differential equations with parameters in seconds (``tau``). spikestream
runs them in discrete steps of ``dt`` seconds by forward Euler (x ← x + dt·ẋ), exactly as the NIR
exporters of snnTorch (1.0) and SpikingJelly (2.0) assume when they write NIR:

    LIF:      v[t] = v[t-1] + (dt / tau) * (v_leak - v[t-1] + r * I[t])        (tau·v' = v_leak − v + r·I)
    CubaLIF:  i[t] = i[t-1] + (dt / tau_syn) * (-i[t-1] + w_in * I[t])         (tau_syn·i' = −i + w_in·I)
              v[t] = v[t-1] + (dt / tau_mem) * (v_leak - v[t-1] + r * i[t])    (tau_mem·v' = v_leak − v + r·i)
    IF:       v[t] = v[t-1] + dt * r_nir * I[t]                                (v' = r_nir·I)

then spike ``s[t] = v[t] >= threshold`` and reset (to v_reset, or by subtracting the threshold).
So an snnTorch ``Leaky(beta)``, exported with ``tau = dt / (1 - beta)`` and ``r = tau / dt``, runs
here as ``v = beta * v + I``.

IF is the one kind whose IR parameter differs from NIR's: NIR's IF has no time constant, so dt
multiplies its ``r`` directly, and the IR's ``IF.r`` stores that per-step gain, ``r = dt * r_nir``
(``integrator_gain``), so that the IR step is ``v = v + r * I``. A SpikingJelly ``IFNode`` is
exported with ``r_nir = 1 / dt`` and imports as ``r = 1``. The NIR front end converts both ways
(``integrator_resistance`` is the inverse); a tool that writes ``r_nir = 1`` for a discrete
``v += I`` neuron disagrees with NIR's equation and with SpikingJelly.

``DEFAULT_DT`` is the step used when a file does not say otherwise; it equals the dt that snnTorch's
and SpikingJelly's NIR exporters use (both hard-code 1e-4 s). ``load_nir(path, dt=...)`` overrides
it; spikestream stores its graph's dt in the file, and the value travels with the graph
(``Graph.dt``) so that every kernel sees the same step.
"""

DEFAULT_DT = 1e-4  # seconds per time step


def decay_factor(tau, dt: float = DEFAULT_DT):
    """The forward-Euler gain dt/tau applied per step (array-friendly)."""
    return dt / tau


def integrator_gain(r_nir, dt: float):
    """IR ``IF.r`` from NIR's IF resistance: the forward-Euler gain dt·r of v' = r·I (array-friendly)."""
    return dt * r_nir


def integrator_resistance(gain, dt: float):
    """NIR's IF resistance from the IR's per-step gain: r = gain / dt (inverse of ``integrator_gain``)."""
    return gain / dt
