print("corral-bench: no benchmark selected")
