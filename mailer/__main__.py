from .cli import main

# The guard matters: card OCR workers are spawned processes that re-import this module.
if __name__ == "__main__":
    main(prog_name="mailer")  # messages say `mailer send --help`, not `python -m mailer ...`
