"""`dltool series`: time-series forecasting with networks, next to the classical baselines."""
