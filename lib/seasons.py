"""Seasons of a series: the autocorrelation peak that marks a cycle, and the history a study should give its
recurrent models so that one cycle and more lies within it."""
from __future__ import annotations

import numpy as np
from scipy import signal, stats

MAX_LAG = 500  # the longest season looked for
PROMINENCE = 0.1  # how far the autocorrelation must rise above its surroundings for a peak to count as a season
ALPHA = 0.05  # significance of a season's autocorrelation (Bartlett's standard error)
MIN_ACF = 0.1  # and the least autocorrelation that counts as a season, however long the series
MAX_HISTORY = 256  # the longest window a series study proposes: recurrent models' cost grows with it
HISTORY = 24  # the window proposed without a season


def autocorrelation(values: np.ndarray, max_lag: int) -> np.ndarray:
    """The sample autocorrelation at lags 0..max_lag (biased estimator, as statsmodels' acf)."""
    v = values - values.mean()
    n = len(v)
    spectrum = np.fft.rfft(v, 2 ** int(np.ceil(np.log2(2 * n))))
    acov = np.fft.irfft(spectrum * np.conj(spectrum))[:max_lag + 1] / n
    return acov / acov[0] if acov[0] > 0 else np.zeros(max_lag + 1)


def detect_season(values, max_lag: int = MAX_LAG) -> int | None:
    """The series' season in steps, or None: of the autocorrelation peaks (after removing a linear trend) that
    stand PROMINENCE above their surroundings and exceed Bartlett's bound (as darts' check_seasonality tests a
    candidate) at ALPHA shared among the candidates and reach MIN_ACF, the highest. Needs three cycles of data."""
    v = np.asarray(values, dtype=np.float64)
    max_lag = min(max_lag, len(v) // 3)
    if max_lag < 2 or np.ptp(v) == 0:
        return None
    t = np.arange(len(v))
    v = v - np.polyval(np.polyfit(t, v, 1), t)
    r = autocorrelation(v, max_lag)
    peaks, _ = signal.find_peaks(r, prominence=PROMINENCE)
    z = stats.norm.ppf(1 - ALPHA / 2 / max(len(peaks), 1))  # Bonferroni over the candidate peaks
    bound = z * np.sqrt((1 + 2 * np.cumsum(r[1:] ** 2)) / len(v))  # bound[k - 1]: Bartlett's at lag k
    season = [p for p in peaks if p >= 2 and r[p] > max(bound[p - 2], MIN_ACF)]
    return int(max(season, key=lambda p: (r[p], -p))) if season else None


def history_window(values, preferred: int = HISTORY) -> int:
    """The window to propose for a series: its detected season and half a season more (at least 12 rows more),
    so that the recurrent models see beyond a window that spans one cycle; at least `preferred`, at most
    MAX_HISTORY. The series' length may allow less (lib.tasks.forecast.min_length)."""
    season = detect_season(values)
    if season is None:
        return preferred
    return int(min(MAX_HISTORY, max(preferred, season + max(season // 2, 12))))


__all__ = ["MAX_HISTORY", "autocorrelation", "detect_season", "history_window"]
