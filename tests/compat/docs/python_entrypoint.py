# ruff: noqa
# docs/website/pages/docs/packing/python.mdx, "3. Entrypoint": `carton_entrypoint.py`. Unchanged.
class Model:
    def __init__(self):
        pass

    def infer_with_tensors(self, tensors):
        return {
            "out": tensors["x"] * 2
        }

def get_model(an_example_custom_option: bool):
    """
    Your entrypoint function can also accept custom options as arguments.
    See below for more details.
    """
    return Model()
