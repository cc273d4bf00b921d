"""Write the real series that ship with statsmodels as CSV tables (see SOURCE.md):
co2.csv (monthly means, the gaps filled forward as statsmodels' examples do), elnino.csv (monthly),
sunspots.csv (yearly, integer years as steps) and macro.csv (quarterly, four US series in one table).

    python sample_data/series/make_series.py
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def frames():
    import pandas as pd
    import statsmodels.api as sm

    co2 = sm.datasets.co2.load_pandas().data["co2"].resample("MS").mean().ffill()
    co2 = pd.DataFrame({"month": co2.index.strftime("%Y-%m-%d"), "co2": co2.round(3).to_numpy()})
    el = sm.datasets.elnino.load_pandas().data
    months = pd.date_range(f"{int(el['YEAR'].iloc[0])}-01-01", periods=12 * len(el), freq="MS")
    elnino = pd.DataFrame({"month": months.strftime("%Y-%m-%d"), "temperature": el.iloc[:, 1:].to_numpy().ravel()})
    ss = sm.datasets.sunspots.load_pandas().data
    sunspots = pd.DataFrame({"year": ss["YEAR"].astype(int), "sunactivity": ss["SUNACTIVITY"]})
    mac = sm.datasets.macrodata.load_pandas().data
    quarters = pd.PeriodIndex.from_fields(year=mac["year"].astype(int), quarter=mac["quarter"].astype(int), freq="Q")
    wide = mac[["realgdp", "realcons", "realinv", "realgovt"]].set_axis(quarters.to_timestamp().strftime("%Y-%m-%d"))
    macro = wide.rename_axis("quarter").reset_index().melt(id_vars="quarter", var_name="series", value_name="value")
    macro = macro[["series", "quarter", "value"]]
    return {"co2": co2, "elnino": elnino, "sunspots": sunspots, "macro": macro}


if __name__ == "__main__":
    for name, frame in frames().items():
        frame.to_csv(HERE / f"{name}.csv", index=False)
        print(f"{name}.csv: {len(frame)} rows")
