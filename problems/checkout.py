"""Checkout Lanes.

K lanes, n customers in order of arrival; customer i arrives at t_i and needs d_i minutes.
A lane is free if its last customer left at or before t_i. If any lane is free, take the
smallest-numbered free one and start at t_i; otherwise wait for the lane that frees up first
(smallest number on ties) and start then. Print "lane leave_time" for each customer.

Input: "K n", then n lines "t_i d_i" with t_i non-decreasing.
Example: K=2, customers (0,5) (0,2) (1,4) print "1 5", "2 2", "2 6".
"""
import sys


def read_header() -> tuple[int, int]:
    """Read the number of lanes K and the number of customers n."""
    k, n = sys.stdin.readline().split()
    return int(k), int(n)


def read_customer() -> tuple[int, int]:
    """Read the next customer's arrival time and service time."""
    t, d = sys.stdin.readline().split()
    return int(t), int(d)


def main() -> None:
    # Your code here.
    ...


if __name__ == "__main__":
    main()
