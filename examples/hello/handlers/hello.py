import os


def handle(req):
    name = req["query"].get("name", "world")
    print(f"greeting {name}")  # goes to the function's log
    return {"status": 200, "body": {"message": f"{os.environ.get('GREETING', 'Hi')}, {name}!", "runtime": "python"}}
