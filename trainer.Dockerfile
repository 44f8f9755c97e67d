# `make train` in a container: trains the intent classifier and writes the model to the volume at /data.
#   make train-docker      (builds the shared base from ./Dockerfile first; untested here: no Docker engine)
# Mount the Humanloop export's folder at /data-in; the store, embedding cache and models stay in /data.
ARG BASE=data-debugger-base
FROM ${BASE}

ENV DATA_DEBUGGER_HUMANLOOP_PATH=/data-in/chatbot_intent_classifier_data.json
CMD ["data-debugger", "train", "--dataset", "humanloop", "--ingest-if-missing", "--if-changed", "--confusion"]
