"""GLoRe engine: tasks, models, generation, labelling, training, pipeline and evaluation.

Never imports gradio, click or the db package: the CLI and the app are clients of this library.
"""

__version__ = "0.1.0"
