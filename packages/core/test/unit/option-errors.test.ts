import { checkNumberOption, checkOption } from "@nxs-sync/core";
import { describe, expect, it } from "vitest";

describe("options errors are config/invalid, never RangeError or TypeError", () => {
  it("checkOption throws config/invalid with the message, built only on failure", () => {
    let built = 0;
    const message = () => {
      built++;
      return "servers lists 1: give at least two";
    };
    checkOption(true, message);
    expect(built).toBe(0);
    expect(() => checkOption(false, message)).toThrow(
      expect.objectContaining({
        code: "config/invalid",
        retryable: false,
        message: "servers lists 1: give at least two",
      }),
    );
  });

  it.each([
    [Number.NaN, {}, "intervalMs NaN must be a finite number"],
    [Number.POSITIVE_INFINITY, { min: 0 }, "intervalMs Infinity must be a finite number >= 0"],
    [-1, { min: 0 }, "intervalMs -1 must be a finite number >= 0"],
    [2.5, { min: 1, max: 4, integer: true }, "intervalMs 2.5 must be an integer >= 1 and <= 4"],
    [5, { max: 4 }, "intervalMs 5 must be a finite number <= 4"],
  ])("refuses %s within %j", (value, bounds, message) => {
    expect(() => checkNumberOption("intervalMs", value, bounds)).toThrow(
      expect.objectContaining({ code: "config/invalid", message }),
    );
  });

  it("returns a value within bounds, and undefined (the default applies)", () => {
    expect(checkNumberOption("minAcks", 2, { min: 1, max: 3, integer: true })).toBe(2);
    expect(checkNumberOption("minAcks", undefined, { min: 1 })).toBeUndefined();
  });
});
