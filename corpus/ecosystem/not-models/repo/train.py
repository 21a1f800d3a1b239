import joblib
from sklearn.linear_model import LinearRegression
