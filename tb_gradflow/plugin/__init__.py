"""The TensorBoard plugin: JSON routes over gradflow summaries, and the tab's static files.

Nothing here imports TensorFlow; TensorBoard loads this module at startup.
"""
