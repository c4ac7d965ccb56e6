// Source files for prompt snapshots, one per language, with named carets for the positions the issue lists:
// mid-line, end of line, empty line inside a block, inside a comment, start and end of file.
namespace CodeLlamaLsp.Prompting.Tests;

internal static class SampleSources
{
    public static readonly string[] Positions = ["mid", "eol", "empty", "comment", "start", "end"];

    public const string Python = """
        ‸(start)import math
        from dataclasses import dataclass


        @dataclass
        class Circle:
            radius: float

            def area(self) -> float:
                # Area of the circle: pi times the ‸(comment)square of the radius.
                return math.pi * self.radius ** 2

            def scaled(self, factor: float) -> "Circle":
                if factor <= 0:
                    raise ValueError("factor must be positive")
                ‸(empty)
                return Circle(self.ra‸(mid)dius * factor)


        def total_area(circles: list[Circle]) -> float:
            return sum(c.area() for c in circles)‸(eol)


        if __name__ == "__main__":
            print(total_area([Circle(1.0), Circle(2.5)]))
        ‸(end)
        """;

    public const string CSharp = """
        ‸(start)using System;
        using System.Collections.Generic;

        namespace Shapes;

        /// <summary>A circle with a radius in metres.</summary>
        public sealed class Circle
        {
            public Circle(double radius)
            {
                if (radius < 0)
                {
                    throw new ArgumentOutOfRangeException(nameof(radius));
                }

                Radius = radius;
            }

            public double Radius { get; }

            // Area of the circle: pi times the ‸(comment)square of the radius.
            public double Area() => Math.PI * Radius * Radius;

            public static double TotalArea(IEnumerable<Circle> circles)
            {
                double total = 0;
                foreach (var circle in circles)
                {
                    total += circle.Ar‸(mid)ea();
                    ‸(empty)
                }

                return total;‸(eol)
            }
        }
        ‸(end)
        """;

    public const string TypeScript = """
        ‸(start)import { readFile } from "fs/promises";

        export interface Circle {
          radius: number;
        }

        // Area of the circle: pi times the ‸(comment)square of the radius.
        export function area(circle: Circle): number {
          return Math.PI * circle.radius ** 2;
        }

        export async function loadCircles(path: string): Promise<Circle[]> {
          const text = await readFile(path, "utf8");
          const parsed = JSON.parse(te‸(mid)xt) as unknown;
          if (!Array.isArray(parsed)) {
            ‸(empty)
          }
          return parsed.filter((item) => typeof item.radius === "number");‸(eol)
        }
        ‸(end)
        """;

    public const string Rust = """
        ‸(start)use std::f64::consts::PI;

        /// A circle with a radius in metres.
        #[derive(Debug, Clone, Copy)]
        pub struct Circle {
            pub radius: f64,
        }

        impl Circle {
            // Area of the circle: pi times the ‸(comment)square of the radius.
            pub fn area(&self) -> f64 {
                PI * self.radius * self.radius
            }

            pub fn scaled(&self, factor: f64) -> Option<Circle> {
                if factor <= 0.0 {
                    ‸(empty)
                }
                Some(Circle { radius: self.rad‸(mid)ius * factor })
            }
        }

        pub fn total_area(circles: &[Circle]) -> f64 {
            circles.iter().map(Circle::area).sum()‸(eol)
        }
        ‸(end)
        """;

    /// <summary>(language id, path, markup) for each sample.</summary>
    public static readonly (string LanguageId, string Path, string Markup)[] All =
    [
        ("python", "shapes/circle.py", Python),
        ("csharp", "Shapes/Circle.cs", CSharp),
        ("typescript", "src/circle.ts", TypeScript),
        ("rust", "src/circle.rs", Rust),
    ];

    /// <summary>A deterministic Python file of <paramref name="lines"/> lines (five-line functions), for budget and speed tests.</summary>
    public static string LargePython(int lines)
    {
        var builder = new System.Text.StringBuilder();
        for (int i = 0; i < lines / 5; i++)
        {
            builder.Append("def scale_").Append(i).Append("(values, factor):\n")
                .Append("    # Multiplies every value by factor plus ").Append(i % 7).Append(".\n")
                .Append("    return [v * factor + ").Append(i % 7).Append(" for v in values]\n")
                .Append('\n')
                .Append('\n');
        }

        return builder.ToString();
    }
}
