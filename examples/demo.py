import os


def read_lines(path):
    """Return the lines of a text file without their newlines."""
    with open(path, encoding="utf-8") as fh:
        return [line.rstrip("\n") for line in fh]


def count_words(path):
    total = 0
    for line in read_lines(path):
        total += 
    return total


if __name__ == "__main__":
    print(count_words(os.path.abspath(__file__)))
