package main

import (
	"image/color"
	"math"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// facet is one panel of grouped bars: val[series][category], NaN where a
// point was not measured.
type facet struct {
	title, xlabel, ylabel string
	cats, series          []string
	val                   [][]float64
}

var palette = []color.Color{
	color.RGBA{31, 119, 180, 255}, color.RGBA{255, 127, 14, 255}, color.RGBA{44, 160, 44, 255},
	color.RGBA{214, 39, 40, 255}, color.RGBA{148, 103, 189, 255}, color.RGBA{140, 86, 75, 255},
	color.RGBA{227, 119, 194, 255}, color.RGBA{127, 127, 127, 255}, color.RGBA{188, 189, 34, 255},
	color.RGBA{23, 190, 207, 255},
}

func col(i int) color.Color { return palette[i%len(palette)] }

// barChart draws the facets side by side into a PNG of width x height points.
func barChart(path string, facets []facet, width, height vg.Length) error {
	plots := [][]*plot.Plot{make([]*plot.Plot, len(facets))}
	for fi, f := range facets {
		p := plot.New()
		p.Title.Text = f.title
		p.X.Label.Text = f.xlabel
		p.Y.Label.Text = f.ylabel
		p.Y.Tick.Marker = humanTicks{}
		maxv := 0.0
		for _, row := range f.val {
			for _, v := range row {
				if !math.IsNaN(v) {
					maxv = math.Max(maxv, v)
				}
			}
		}
		// Bars: the group spans 80% of a category's width.
		panelW := width/vg.Length(len(facets)) - 80
		barW := panelW / vg.Length(len(f.cats)) * 0.8 / vg.Length(max(1, len(f.series)))
		for si, name := range f.series {
			vals := make(plotter.Values, len(f.cats))
			for ci := range f.cats {
				v := f.val[si][ci]
				if math.IsNaN(v) {
					v = 0
				}
				vals[ci] = v
			}
			b, err := plotter.NewBarChart(vals, barW)
			if err != nil {
				return err
			}
			b.Color = col(si)
			b.LineStyle.Width = 0
			b.Offset = barW * (vg.Length(si) - vg.Length(len(f.series)-1)/2)
			p.Add(b)
			p.Legend.Add(name, b)
		}
		p.NominalX(f.cats...)
		g := plotter.NewGrid()
		g.Vertical.Color = nil
		p.Add(g)
		p.Legend.Top = true
		p.Legend.Left = true
		// Room above the bars for the legend.
		p.Y.Min = 0
		p.Y.Max = maxv * (1.15 + 0.075*float64(len(f.series)))
		plots[0][fi] = p
	}
	return savePlots(path, plots, width, height)
}

// lineChart draws facets of time series: xs[series], ys[series].
type lineFacet struct {
	title, xlabel, ylabel string
	series                []string
	xs, ys                [][]float64
}

func lineChart(path string, facets []lineFacet, width, height vg.Length) error {
	plots := [][]*plot.Plot{make([]*plot.Plot, len(facets))}
	for fi, f := range facets {
		p := plot.New()
		p.Title.Text = f.title
		p.X.Label.Text = f.xlabel
		p.Y.Label.Text = f.ylabel
		p.Y.Min = 0
		maxv := 0.0
		for si, name := range f.series {
			pts := make(plotter.XYs, 0, len(f.xs[si]))
			for i := range f.xs[si] {
				if !math.IsNaN(f.ys[si][i]) {
					pts = append(pts, plotter.XY{X: f.xs[si][i], Y: f.ys[si][i]})
					maxv = math.Max(maxv, f.ys[si][i])
				}
			}
			if len(pts) == 0 {
				continue
			}
			l, err := plotter.NewLine(pts)
			if err != nil {
				return err
			}
			l.Color = col(si)
			l.Width = vg.Points(1.5)
			l.Dashes = plotutil.Dashes(si)
			p.Add(l)
			p.Legend.Add(name, l)
		}
		p.Y.Max = maxv*1.3 + 1
		p.Add(plotter.NewGrid())
		p.Legend.Top = true
		plots[0][fi] = p
	}
	return savePlots(path, plots, width, height)
}

func savePlots(path string, plots [][]*plot.Plot, width, height vg.Length) error {
	img := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(110))
	dc := draw.New(img)
	// White background: PNG viewers with dark themes otherwise show
	// black text on black.
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	t := draw.Tiles{Rows: 1, Cols: len(plots[0]), PadX: vg.Millimeter * 4, PadTop: vg.Millimeter * 2,
		PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 4}
	canvases := plot.Align(plots, t, dc)
	for i, p := range plots[0] {
		p.Draw(canvases[0][i])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// humanTicks labels a linear axis with k and M suffixes.
type humanTicks struct{}

func (humanTicks) Ticks(min, max float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = human(ts[i].Value)
		}
	}
	return ts
}

func human(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return trim(v/1e6) + "M"
	case a >= 1e3:
		return trim(v/1e3) + "k"
	default:
		return trim(v)
	}
}

func trim(v float64) string {
	s := plot.DefaultTicks{}
	_ = s
	if v == math.Trunc(v) {
		return formatFloat(v, 0)
	}
	return formatFloat(v, 1)
}
