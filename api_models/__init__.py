"""The API's models by kind: unified values, request bodies, answers, and the OpenAPI request examples.

models.py re-exports the model names (it is the design's model module); helpers are imported from here.
"""
