//! One drawing, two files: the same drawing code renders into an RGB buffer (encoded as
//! PNG with the `png` crate) and into an SVG string, both written atomically.
//!
//! Text in the PNG needs a font. plotters' `ab_glyph` renderer is given DejaVu Sans from the
//! `dejavu` crate (compiled into the binary), so plots render the same on a laptop, a
//! container without fonts, or CI — no fontconfig, no system font lookup. The SVG names
//! the family `sans-serif` and leaves rendering to the viewer.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{anyhow, Context};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::export::sink::AtomicFile;

/// Register the bundled font under the family name plotters uses for `"sans-serif"`.
pub fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bundled TTFs are valid fonts; a failure here would be a broken build.
        let ok = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .is_ok()
            && plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold()).is_ok();
        assert!(ok, "the bundled DejaVu Sans font failed to load");
    });
}

/// Turn a plotters error (generic over the backend) into an error naming the plot.
pub fn plot_err<E: std::fmt::Debug>(what: &str) -> impl Fn(E) -> anyhow::Error + '_ {
    move |e| anyhow!("drawing {what}: {e:?}")
}

/// A figure that can draw itself on any plotters backend.
pub trait Figure {
    /// Draw onto `root` (already filled white).
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()>;
}

/// Render `fig` at `size` into `<dir>/<stem>.png` and `<dir>/<stem>.svg`; returns both paths.
pub fn render_png_and_svg(
    dir: &Path,
    stem: &str,
    size: (u32, u32),
    fig: &impl Figure,
) -> anyhow::Result<[PathBuf; 2]> {
    register_fonts();
    let png_path = dir.join(format!("{stem}.png"));
    let svg_path = dir.join(format!("{stem}.svg"));

    let mut rgb = vec![255u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err(stem))?;
        fig.draw(&root)?;
        root.present().map_err(plot_err(stem))?;
    }
    let mut file = AtomicFile::create(&png_path)?;
    {
        let mut enc = png::Encoder::new(&mut file, size.0, size.1);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().with_context(|| format!("writing {}", png_path.display()))?;
        w.write_image_data(&rgb).with_context(|| format!("writing {}", png_path.display()))?;
        w.finish().with_context(|| format!("writing {}", png_path.display()))?;
    }
    file.commit()?;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err(stem))?;
        fig.draw(&root)?;
        root.present().map_err(plot_err(stem))?;
    }
    let mut file = AtomicFile::create(&svg_path)?;
    file.write_all(svg.as_bytes()).with_context(|| format!("writing {}", svg_path.display()))?;
    file.commit()?;
    Ok([png_path, svg_path])
}
