using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Taming.ML.Evaluation;

/// <summary>
/// A 5×7 bitmap font of capitals, digits and the signs that charts label with. It is built in because the machines a
/// model trains on often have no font files, and text drawn from none would silently be missing.
/// </summary>
internal static class PixelFont
{
    public const int GlyphWidth = 5, GlyphHeight = 7, Advance = GlyphWidth + 1;

    // Seven rows per glyph, '#' for ink.
    private static readonly Dictionary<char, string[]> Glyphs = new Dictionary<char, string>
    {
        ['A'] = ".###. #...# #...# ##### #...# #...# #...#", ['B'] = "####. #...# #...# ####. #...# #...# ####.",
        ['C'] = ".###. #...# #.... #.... #.... #...# .###.", ['D'] = "####. #...# #...# #...# #...# #...# ####.",
        ['E'] = "##### #.... #.... ####. #.... #.... #####", ['F'] = "##### #.... #.... ####. #.... #.... #....",
        ['G'] = ".###. #...# #.... #.### #...# #...# .####", ['H'] = "#...# #...# #...# ##### #...# #...# #...#",
        ['I'] = ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.", ['J'] = "..### ...#. ...#. ...#. ...#. #..#. .##..",
        ['K'] = "#...# #..#. #.#.. ##... #.#.. #..#. #...#", ['L'] = "#.... #.... #.... #.... #.... #.... #####",
        ['M'] = "#...# ##.## #.#.# #.#.# #...# #...# #...#", ['N'] = "#...# #...# ##..# #.#.# #..## #...# #...#",
        ['O'] = ".###. #...# #...# #...# #...# #...# .###.", ['P'] = "####. #...# #...# ####. #.... #.... #....",
        ['Q'] = ".###. #...# #...# #...# #.#.# #..#. .##.#", ['R'] = "####. #...# #...# ####. #.#.. #..#. #...#",
        ['S'] = ".#### #.... #.... .###. ....# ....# ####.", ['T'] = "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
        ['U'] = "#...# #...# #...# #...# #...# #...# .###.", ['V'] = "#...# #...# #...# #...# #...# .#.#. ..#..",
        ['W'] = "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.", ['X'] = "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
        ['Y'] = "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..", ['Z'] = "##### ....# ...#. ..#.. .#... #.... #####",
        ['0'] = ".###. #...# #..## #.#.# ##..# #...# .###.", ['1'] = "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
        ['2'] = ".###. #...# ....# ...#. ..#.. .#... #####", ['3'] = "##### ...#. ..#.. ...#. ....# #...# .###.",
        ['4'] = "...#. ..##. .#.#. #..#. ##### ...#. ...#.", ['5'] = "##### #.... ####. ....# ....# #...# .###.",
        ['6'] = "..##. .#... #.... ####. #...# #...# .###.", ['7'] = "##### ....# ...#. ..#.. .#... .#... .#...",
        ['8'] = ".###. #...# #...# .###. #...# #...# .###.", ['9'] = ".###. #...# #...# .#### ....# ...#. .##..",
        ['.'] = "..... ..... ..... ..... ..... .##.. .##..", [','] = "..... ..... ..... ..... .##.. ..#.. .#...",
        ['-'] = "..... ..... ..... ##### ..... ..... .....", ['+'] = "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
        ['%'] = "##... ##..# ...#. ..#.. .#... #..## ...##", ['/'] = "..... ....# ...#. ..#.. .#... #.... .....",
        ['('] = "...#. ..#.. .#... .#... .#... ..#.. ...#.", [')'] = ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
        [':'] = "..... .##.. .##.. ..... .##.. .##.. .....", [' '] = "..... ..... ..... ..... ..... ..... .....",
    }.ToDictionary(g => g.Key, g => g.Value.Split(' '));

    /// <summary>The width in pixels of <paramref name="text"/> at <paramref name="scale"/>.</summary>
    public static int Width(string text, int scale) => text.Length * Advance * scale;

    /// <summary>Draws <paramref name="text"/> (in capitals; characters without a glyph as spaces) with its top left at (x, y).</summary>
    public static void Draw(Image<Rgb24> image, string text, int x, int y, Rgb24 color, int scale)
    {
        foreach (char c in text.ToUpperInvariant())
        {
            if (Glyphs.TryGetValue(c, out var rows))
                for (int r = 0; r < GlyphHeight; r++)
                for (int col = 0; col < GlyphWidth; col++)
                    if (rows[r][col] == '#')
                        for (int dy = 0; dy < scale; dy++)
                        for (int dx = 0; dx < scale; dx++)
                            Plot(image, x + col * scale + dx, y + r * scale + dy, color);
            x += Advance * scale;
        }
    }

    /// <summary>Sets one pixel where it lies inside the image.</summary>
    public static void Plot(Image<Rgb24> image, int x, int y, Rgb24 color)
    {
        if (x >= 0 && y >= 0 && x < image.Width && y < image.Height) image[x, y] = color;
    }
}
