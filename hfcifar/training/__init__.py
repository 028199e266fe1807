"""Training: `CifarTrainer` (the one loop), its arguments, callbacks, typed recipes, the training families and
`train_classifier`."""

from .adversarial import AdversarialTrainer, AdversarialTrainingArguments
from .args import CifarTrainingArguments
from .callbacks import TimeBudgetCallback, TrainingCurvesCallback, plot_training_curves
from .families import TRAINING_FAMILIES, TrainingFamily, families, family_of, train
from .optimizers import OPTIMIZERS
from .recipes import DEFAULT_RECIPES, RECIPES, Recipe, default_recipe, get_recipe, recipes_of, register_recipe
from .run import CLASSIFIER, SUMMARY_FILE, RunArguments, RunDirectoryError, TrainingRun, train_classifier
from .trainer import CifarTrainer, accuracy_metrics
from .trainers import DEFAULT_TRAINERS, TRAINERS, default_trainer, trainer_classes, trainer_name

__all__ = [
    "AdversarialTrainer",
    "AdversarialTrainingArguments",
    "CLASSIFIER",
    "CifarTrainer",
    "CifarTrainingArguments",
    "DEFAULT_RECIPES",
    "DEFAULT_TRAINERS",
    "OPTIMIZERS",
    "RECIPES",
    "Recipe",
    "RunArguments",
    "RunDirectoryError",
    "SUMMARY_FILE",
    "TRAINERS",
    "TRAINING_FAMILIES",
    "TimeBudgetCallback",
    "TrainingCurvesCallback",
    "TrainingFamily",
    "TrainingRun",
    "accuracy_metrics",
    "default_recipe",
    "default_trainer",
    "families",
    "family_of",
    "get_recipe",
    "plot_training_curves",
    "recipes_of",
    "register_recipe",
    "train",
    "train_classifier",
    "trainer_classes",
    "trainer_name",
]
