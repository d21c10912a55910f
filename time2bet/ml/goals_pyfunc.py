"""The goals model's pyfunc as MLflow "models from code": logged as this file (copied into the model's artifacts)
and executed on load, so loading ``match_goals`` unpickles nothing; the parameters come from the model's JSON
artifact (:meth:`time2bet.ml.goals_model.GoalsPyfunc.load_context`)."""

from mlflow.models import set_model

from time2bet.ml.goals_model import GoalsPyfunc

set_model(GoalsPyfunc())
