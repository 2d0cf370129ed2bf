//! vmapi-guest: one EL1 test guest image for Wurley's message queues, doorbells and
//! capabilities; `/chosen/bootargs` picks the role.
//!
//! * `role=ping` / `role=pong`: linked by a message-queue pair (`chat=`, default `chat`) and a
//!   doorbell (`bell=`, default `bell`; ping rings, pong receives). They exchange `count=`
//!   (default 2000) messages each way, then test the doorbell's masks and ring it `rounds=`
//!   (default 500) times, everything driven by vIRQs ([`pingpong`]).
//! * `role=hostile`: holds caps to its own partition, cspace and VIC and walks the error paths
//!   of the ABI, checking exact error codes ([`hostile`]). An optional message-queue pair
//!   (`spare=`, default `spare`) adds checks on caps with restricted rights.
//! * `role=objects-hostile`: with the same caps, abuses the VM-building and memory calls
//!   (extents over memory it does not own, a VM without memory built in every wrong order,
//!   stale threads, random calls), checking exact error codes ([`objects`]).
//! * `role=heartbeat`: prints a line every 100 ms forever: a bystander VM ([`objects`]).
//! * `role=rmclient`: a client of the Resource Manager VM over its `rm-<name>` link: RPC
//!   framing and the RM's answers ([`rmclient`]).
//! * `role=proxy-owner guest=<vm> dev=<ipa>` / `role=proxied dev=<ipa>`: proxy scheduling:
//!   the owner runs the proxied VM with `vcpu_run` and emulates a device for it through the
//!   VMMIO run states ([`proxy`]).
//! * `role=spin cpus=N seconds=S`: N vCPUs busy-loop counting for S seconds of virtual time and
//!   print their counts, a measure of their CPU share ([`spin`]).
//! * `role=latency period-us=P samples=K`: wait K times for the virtual timer armed P µs ahead
//!   and report how late its interrupt arrived ([`latency`]).
//! * `role=affinity`: the VM moves its own vCPUs between physical CPUs with
//!   `vcpu_set_affinity` ([`affinity`]).
//! * `role=yield-to`: directed yields between the VM's own vCPUs ([`yieldto`]).
//! * `role=vmlife rounds=N`: as the primary VM, create a secondary VM through the Resource
//!   Manager from the image and device tree in its initrd, talk to it, stop it, take its memory
//!   back and free it, N times ([`vmlife`]); with `demand=1` it also gives it 2 MiB on demand
//!   (VM_SET_DEMAND_PAGING and the type-9 extents); with `proxy=1` (the child's device tree
//!   says `gunyah-vm-config/vcpus/affinity = "proxy"`) it runs the child itself with `vcpu_run`
//!   until the child powers off.
//! * `role=vmchild`: that secondary VM (the `vmapi-child` image: this program linked where
//!   `vmlife` lends it memory): answers its owner, then idles until stopped, or powers off if
//!   asked ([`vmchild`]).
//! * `role=irqlend` / `role=irqchild`: as the primary VM with QEMU's PL031 RTC, take its
//!   interrupt, lend it to a child VM created as `vmlife` does, and take it back; the child
//!   accepts it, takes the interrupt and releases it ([`irqlend`]).
//!
//! The RPC transport to the Resource Manager is shared by the roles that use it ([`rpc`]).
//!
//! Output, one line per check: `VMAPI <role> <check> PASS|FAIL <details>`, some
//! `VMAPI <role> <name> INFO <details>` lines, and finally
//! `VMAPI <role> DONE pass=<n> fail=<m>`; then the guest powers off (`vmchild` idles instead).
//! Built for the host it is an empty library and programs, so that `cargo test --workspace`
//! works.

#![cfg_attr(target_os = "none", no_std)]
// Receiving into deliberately bad buffer addresses (hostile) needs `unsafe`.
#![cfg_attr(target_os = "none", allow(unsafe_code))]

#[cfg(target_os = "none")]
mod affinity;
#[cfg(target_os = "none")]
mod hostile;
#[cfg(target_os = "none")]
mod irqlend;
#[cfg(target_os = "none")]
mod latency;
#[cfg(target_os = "none")]
mod objects;
#[cfg(target_os = "none")]
mod pingpong;
#[cfg(target_os = "none")]
mod proxy;
#[cfg(target_os = "none")]
mod report;
#[cfg(target_os = "none")]
mod rmclient;
#[cfg(target_os = "none")]
mod rpc;
#[cfg(target_os = "none")]
mod spin;
#[cfg(target_os = "none")]
mod vmchild;
#[cfg(target_os = "none")]
mod vmlife;
#[cfg(target_os = "none")]
mod yieldto;

/// The guest's main function, for [`wurley_rt::entry!`]: the bins `vmapi-guest` (linked at
/// 0x4000_0000, run wherever its VM's RAM is) and `vmapi-child` (the same program linked at
/// 0x4200_0000, see `build.rs`) both run it.
#[cfg(target_os = "none")]
pub fn guest_main(_dtb: usize) -> ! {
    use wurley_rt::args;

    let fdt = wurley_rt::fdt();
    let bootargs = fdt
        .as_ref()
        .and_then(|f| f.find_node("/chosen"))
        .and_then(|c| c.prop_str("bootargs"))
        .unwrap_or("");
    let role = args::get(bootargs, "role").unwrap_or("none");
    let mut r = report::Report::new(role);
    let Some(fdt) = fdt else {
        r.check("setup", false, format_args!("no valid device tree"));
        r.done();
    };
    r.info("boot", format_args!("bootargs=\"{bootargs}\""));
    let (ram, ram_size) = wurley_rt::ram();
    r.info(
        "ram",
        format_args!(
            "base={ram:#x} size={ram_size:#x} image={:#x}",
            wurley_rt::mmu::image_base()
        ),
    );
    match role {
        "ping" | "pong" => pingpong::run(&mut r, &fdt, bootargs, role == "ping"),
        "hostile" => hostile::run(&mut r, &fdt, bootargs),
        "objects-hostile" => objects::run(&mut r, &fdt, bootargs),
        "heartbeat" => objects::heartbeat(&mut r),
        "spin" => spin::run(&mut r, &fdt, bootargs),
        "latency" => latency::run(&mut r, bootargs),
        "rmclient" => rmclient::run(&mut r, &fdt, bootargs),
        "proxy-owner" => proxy::run_owner(&mut r, &fdt, bootargs),
        "proxied" => proxy::run_proxied(&mut r, bootargs),
        "affinity" => affinity::run(&mut r, &fdt, bootargs),
        "yield-to" => yieldto::run(&mut r, &fdt, bootargs),
        "vmlife" => vmlife::run(&mut r, &fdt, bootargs),
        "vmchild" => vmchild::run(&mut r, &fdt, bootargs),
        "irqlend" => irqlend::run_owner(&mut r, &fdt, bootargs),
        "irqchild" => irqlend::run_child(&mut r, &fdt, bootargs),
        _ => {
            r.check(
                "setup",
                false,
                format_args!(
                    "unknown role (want role=ping|pong|hostile|objects-hostile|heartbeat|rmclient|proxy-owner|proxied|affinity|yield-to|vmlife|vmchild|irqlend|irqchild)"
                ),
            );
        }
    }
    r.done()
}
