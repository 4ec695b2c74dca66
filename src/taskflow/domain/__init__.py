"""The pure core: values, the task entity, workflows and the engine. No I/O, no clock, no ids."""
