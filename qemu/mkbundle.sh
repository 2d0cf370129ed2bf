#!/usr/bin/env bash
# Write and compile a boot bundle (docs/configuration.md) with N identical Linux VMs; with
# two or more, the first two are linked by a message-queue pair named "chat".
#   qemu/mkbundle.sh OUT.dtb KERNEL INITRD "BOOTARGS" VCPUS GUEST_MEM [VMS]
# GUEST_MEM takes a size with an M or G suffix. The first VM gets the console focus.
set -euo pipefail
out=$1 kernel=$2 initrd=$3 bootargs=$4 vcpus=$5 mem=$6 vms=${7:-1}

case "$mem" in
    *G) bytes=$(( ${mem%G} << 30 )) ;;
    *M) bytes=$(( ${mem%M} << 20 )) ;;
    *) bytes=$mem ;;
esac
hi=$(printf '0x%x' $(( bytes >> 32 )))
lo=$(printf '0x%x' $(( bytes & 0xffffffff )))
abs() { (cd "$(dirname "$1")" && printf '%s/%s' "$(pwd)" "$(basename "$1")"); }
kernel=$(abs "$kernel")
initrd=$(abs "$initrd")
esc_bootargs=${bootargs//\\/\\\\}
esc_bootargs=${esc_bootargs//\"/\\\"}

dts="${out%.dtb}.dts"
{
    echo '/dts-v1/;'
    echo '/ {'
    echo '    compatible = "wurley,bundle-v1";'
    echo '    vms {'
    for i in $(seq 1 "$vms"); do
        name=linux
        [ "$vms" -gt 1 ] && name="linux$i"
        echo "        $name {"
        echo "            kernel = /incbin/(\"$kernel\");"
        echo "            initrd = /incbin/(\"$initrd\");"
        echo "            bootargs = \"$esc_bootargs\";"
        echo "            memory-size = <$hi $lo>;"
        echo "            vcpus = <$vcpus>;"
        [ "$i" -eq 1 ] && echo "            console;"
        echo '        };'
    done
    echo '    };'
    if [ "$vms" -gt 1 ]; then
        # The first two VMs talk over a message-queue pair (Gunyah's /hypervisor binding).
        echo '    links {'
        echo '        chat {'
        echo '            compatible = "wurley,msgqueue-pair";'
        echo '            vms = "linux1", "linux2";'
        echo '        };'
        echo '    };'
    fi
    echo '};'
} > "$dts"
dtc -q -I dts -O dtb -o "$out" "$dts"
